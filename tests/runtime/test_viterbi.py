"""BIO-constrained Viterbi alone, on random scores (lean: base install and pytest only)."""
import itertools

import numpy as np
import pytest

from koner.decode import BIO, Decode, ViterbiStream, log_softmax

pytestmark = pytest.mark.lean

LABELS = ("O", "B-PS", "I-PS", "B-LC", "I-LC")


def _brute_force(bio: BIO, logp: np.ndarray) -> float:
    best = -np.inf
    for seq in itertools.product(range(bio.n), repeat=len(logp)):
        if bio.valid(np.asarray(seq)):
            best = max(best, sum(logp[t, k] for t, k in enumerate(seq)))
    return best


def test_valid_bio_rules_come_from_the_labels():
    bio = BIO(LABELS)
    assert bio.valid(np.array([0, 1, 2, 2, 0, 3, 4]))
    assert not bio.valid(np.array([2]))  # I- first
    assert not bio.valid(np.array([0, 2]))  # I- after O
    assert not bio.valid(np.array([1, 4]))  # I-LC after B-PS
    other = BIO(("O", "B-Ticket", "I-Ticket"))  # any B-/I- pair, no fixed tag list
    assert other.valid(np.array([1, 2])) and not other.valid(np.array([0, 2]))


def test_viterbi_finds_the_best_valid_sequence():
    bio = BIO(LABELS)
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 6))
        logp = log_softmax(rng.normal(scale=2.0, size=(n, len(LABELS))))
        ids = bio.decode(logp)
        assert bio.valid(ids)
        assert sum(logp[t, k] for t, k in enumerate(ids)) == pytest.approx(_brute_force(bio, logp))


def test_a_valid_argmax_is_kept_and_long_random_sequences_come_out_valid():
    bio = BIO(LABELS)
    rng = np.random.default_rng(1)
    for _ in range(20):  # a valid label sequence made the argmax of random scores: Viterbi returns it as it is
        ids, prev = [], 0
        for _ in range(60):
            prev = int(rng.choice([0, 1, 3] + ([prev + 1, prev] if prev in (1, 3) else [prev] if prev in (2, 4) else [])))
            ids.append(prev)
        ids = np.asarray(ids)
        assert bio.valid(ids)
        logits = rng.normal(size=(len(ids), 5))
        logits[np.arange(len(ids)), ids] += 10.0
        assert (logits.argmax(-1) == ids).all() and (bio.decode(logits) == ids).all()
    for _ in range(50):
        logp = log_softmax(rng.normal(scale=3.0, size=(int(rng.integers(1, 400)), 5)))
        assert bio.valid(bio.decode(logp))


def test_the_stream_gives_the_whole_sequence_answer_in_any_pieces():
    bio = BIO(LABELS)
    rng = np.random.default_rng(2)
    for _ in range(30):
        logits = rng.normal(scale=2.5, size=(int(rng.integers(1, 300)), 5))
        whole = bio.decode(log_softmax(logits))
        stream, got, pos = ViterbiStream(bio), [], 0
        while pos < len(logits):
            step = int(rng.integers(1, 40))
            got += stream.feed(logits[pos:pos + step]).tolist()
            pos += step
        got += stream.close().tolist()
        assert got == whole.tolist()


def test_decode_names_are_checked():
    assert Decode.parse("viterbi") is Decode.VITERBI
    with pytest.raises(ValueError, match="argmax, viterbi"):
        Decode.parse("beam")
