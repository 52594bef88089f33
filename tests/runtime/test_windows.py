"""Windows alone: planning and stitching on synthetic token sequences (lean: base install and pytest only)."""
import numpy as np
import pytest

from koner import windows as win
from koner.tokens import Tokens

pytestmark = pytest.mark.lean


def _tokens(n: int) -> Tokens:
    return Tokens(np.arange(n, dtype=np.int64), [(i, i + 1) for i in range(n)], np.zeros(n, bool), ["x"] * n)


@pytest.mark.parametrize("max_length,overlap", [(512, 128), (16, 4), (16, 0), (10, 3), (12, 5)])
def test_windows_cover_every_token_with_context_on_both_sides(max_length, overlap):
    width = max_length - 2
    for n in list(range(3, 4 * max_length)) + [10 * max_length + 7]:
        plan = win.plan(_tokens(n), max_length, overlap)
        if n <= max_length:  # fits: one window, fed exactly as the pipeline feeds it
            assert len(plan) == 1 and list(plan[0].ids) == list(range(n))
            continue
        seen = set()
        for w in plan:
            assert len(w.ids) == max_length and w.ids[0] == 0 and w.ids[-1] == n - 1  # [CLS] ... [SEP]
            assert list(w.ids[1:-1]) == list(range(w.start, w.start + width))
            seen.update(range(w.start, w.start + width))
        assert seen == set(range(1, n - 1))  # every content token, none dropped
        assert plan[0].start == 1 and plan[-1].start + width == n - 1  # the text's own edges
        starts = [w.start for w in plan]
        assert starts == sorted(set(starts))
        assert all(b - a <= width - overlap for a, b in zip(starts, starts[1:]))  # neighbours overlap enough

        # each token's row comes from the window where it is farthest from a cut
        logits = [np.full((max_length, 1), k, np.float32) for k in range(len(plan))]
        rows = win.stitch(n, plan, logits)
        assert rows.shape == (n, 1) and rows[0, 0] == 0 and rows[-1, 0] == len(plan) - 1
        for t in range(1, n - 1):
            k = int(rows[t, 0])
            w = plan[k]
            left = t - w.start if w.start > 1 else n
            right = w.start + width - 1 - t if w.start + width < n - 1 else n
            # context on each side is at least half the overlap, or all the text has
            assert min(left, right) >= overlap // 2 or min(t - 1, n - 2 - t) < overlap // 2


def test_a_token_at_every_cut_takes_the_other_window():
    max_length, overlap, n = 16, 4, 40
    plan = win.plan(_tokens(n), max_length, overlap)
    logits = [np.full((max_length, 1), k, np.float32) for k in range(len(plan))]
    rows = win.stitch(n, plan, logits)
    width = max_length - 2
    for k, w in enumerate(plan[:-1]):  # the last content token of window k sits at a cut
        cut = w.start + width - 1
        assert rows[cut, 0] != k


def _expected_rows(n, plan, logits):
    """Each token's row by the rule itself, written out: [CLS] from the first window, [SEP] from the last, every
    other token from the window where it is farthest from a cut edge (a text edge is no cut), the earlier on a tie."""
    rows = np.empty((n, logits[0].shape[-1]), logits[0].dtype)
    rows[0], rows[n - 1] = logits[0][0], logits[-1][-1]
    for t in range(1, n - 1):
        best, best_margin = None, -1
        for k, w in enumerate(plan):
            width = len(w.ids) - 2
            if not w.start <= t < w.start + width:
                continue
            left = t - w.start if w.start > 1 else n
            right = w.start + width - 1 - t if w.start + width < n - 1 else n
            if min(left, right) > best_margin:
                best, best_margin = k, min(left, right)
        rows[t] = logits[best][1 + t - plan[best].start]
    return rows


@pytest.mark.parametrize("max_length,overlap,n", [(16, 6, 101), (16, 0, 45), (12, 5, 12), (10, 3, 64), (512, 128, 2000)])
def test_stitcher_hands_out_rows_in_order_and_holds_at_most_one_window(max_length, overlap, n):
    plan = win.plan(_tokens(n), max_length, overlap)
    logits = [np.random.default_rng(k).normal(size=(len(w.ids), 3)).astype(np.float32) for k, w in enumerate(plan)]
    st = win.Stitcher(n)
    parts, nxt = [], 0
    for w, lg in zip(plan, logits):
        done = st.add(w, lg)
        assert len(st.rows) <= max_length
        if done is not None:
            assert done[0] == nxt
            nxt += len(done[1])
            parts.append(done[1])
    first, rest = st.finish()
    assert first == nxt
    assert np.array_equal(np.concatenate(parts + [rest]), _expected_rows(n, plan, logits))


def test_window_starts_are_the_documented_ones():
    # 512 positions, overlap 128: windows of 510 tokens stepping by 382, the last one flush with the text's end
    assert win.starts(5, 512, 128) == [1]
    assert win.starts(512, 512, 128) == [1]  # fits exactly: one window, [CLS] and [SEP] included
    assert win.starts(513, 512, 128) == [1, 2]
    assert win.starts(2000, 512, 128) == [1, 383, 765, 1147, 1489]
    assert win.starts(40, 16, 4) == [1, 11, 21, 25]
    assert [w.start for w in win.plan(_tokens(2000), 512, 128)] == [1, 383, 765, 1147, 1489]


@pytest.mark.parametrize("stride", [0, 128, 300])
def test_pipeline_chunks_are_the_tokenizers_overflowing_windows(stride):
    """long_text="pipeline" cuts a text where transformers' pipeline(stride=...) does: the tokenizer's overflow."""
    from tokenizers import Tokenizer

    from koner import NER
    from koner.windows import pipeline_chunks

    ner = NER.load()
    text = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다. " * 120
    tokens = ner.tokenize(text)
    hf = Tokenizer.from_file(str(ner.folder / "tokenizer.json"))
    hf.enable_truncation(max_length=512, stride=stride)
    enc = hf.encode(text)
    want = [enc.ids] + [o.ids for o in enc.overflowing]
    got = [w.ids.tolist() for w, _ in pipeline_chunks(tokens, 512, stride)]
    assert len(got) > 2 and got == want
    for w, chunk in pipeline_chunks(tokens, 512, stride):
        assert chunk.special[0] and chunk.special[-1] and not chunk.special[1:-1].any()
        assert list(chunk.offsets[1:-1]) == list(tokens.offsets[w.start:w.start + len(chunk.ids) - 2])


def test_a_line_over_the_limit_is_read_past_in_bounded_pieces_and_reported():
    """An input without a newline (a corrupt file, /dev/zero) cannot make a reader hold it: the line is counted
    in pieces and comes out as `Overlong`, the lines around it unchanged."""
    from koner import lines

    class Endless:  # 50 million characters without a newline, then one; records the largest read asked for
        def __init__(self):
            self.left, self.largest, self.rest = 50_000_000, 0, ["\n", "서울역으로 안내해줘.\n"]

        def readline(self, size):
            self.largest = max(self.largest, size)
            if self.left:
                n = min(size, self.left)
                self.left -= n
                return "가" * n
            return self.rest.pop(0) if self.rest else ""

    stream = Endless()
    got = list(lines.read(stream, max_chars=1000))
    assert [type(t).__name__ for t in got] == ["Overlong", "str"] and got[1] == "서울역으로 안내해줘."
    assert got[0].chars == 50_000_000 and got[0] == ""  # the newline ended it, and is not counted
    assert stream.largest <= 1 << 20  # never more than a bounded piece at a time
    assert "split it into lines" in got[0].reason(1000)
