"""Builds export/koner_export/data/parity-corpus.jsonl: the stand-in's held-out sentences (with gold
character spans) plus varied Korean sentences by category, and long documents past 512 tokens; and
calibration.jsonl: 400 training sentences for accuracy-aware quantization. With --outside, also
outside-corpus.jsonl: unlabelled sentences that no export step was ever tuned on (KLUE-NER train
sentences, NSMC reviews, commands), a second corpus for `koner parity --corpus`.

Usage: python -m standin.recipe.parity_corpus [--outside KLUE_TSV NSMC_XZ]
"""
from __future__ import annotations

import argparse
import json
import lzma
import random
from pathlib import Path

from .evaluate import bio_spans
from .prepare import DATA, heldout_ids, load_subtype_map, read_konec

OUT = Path(__file__).resolve().parents[2] / "export" / "koner_export" / "data" / "parity-corpus.jsonl"
CALIBRATION = OUT.with_name("calibration.jsonl")

COMMANDS = ["서울역으로 안내해줘.", "에어컨 온도 3도 올려줘.", "아이유 노래 검색해줘.", "내일 아침 7시에 깨워줘.",
            "부산 날씨 알려줘.", "강남역 근처 맛집 찾아줘.", "엄마한테 전화 걸어줘.", "BTS 신곡 틀어줘.",
            "거실 불 꺼줘.", "다음 주 금요일 일정 알려줘.", "제주도 가는 비행기 표 예매해줘.", "볼륨 50%로 줄여줘.",
            "뉴진스 하입보이 재생해줘.", "광화문 교보문고까지 얼마나 걸려?", "오늘 코스피 지수 알려줘.",
            "삼성전자 주가 얼마야?", "10분 뒤에 알람 맞춰줘.", "유튜브에서 백종원 레시피 찾아줘.",
            "대전 가는 KTX 시간표 보여줘.", "손흥민 경기 결과 알려줘.", "크리스마스까지 며칠 남았어?",
            "김치찌개 끓이는 법 알려줘.", "인천공항 주차장 요금 얼마야?", "넷플릭스에서 오징어 게임 틀어줘.",
            "서울대병원 전화번호 찾아줘.", "3시간 타이머 맞춰줘.", "세종대왕 동상 위치 알려줘.",
            "카카오톡으로 철수한테 메시지 보내줘.", "현대자동차 고객센터 연결해줘.", "설날 연휴가 언제야?"]
NUMBERS = ["2024년 1월 1일 0시부터 새 요금제가 적용된다.", "기온이 영하 12.5도까지 떨어졌다.",
           "서울 아파트 평균 가격은 10억 3천만 원을 넘었다.", "마라톤 풀코스는 42.195km이다.",
           "회의는 오후 2시 30분에 3층 대회의실에서 열린다.", "1998년 IMF 외환위기 당시 환율은 1,960원까지 올랐다.",
           "이 약은 하루 3번, 식후 30분에 2알씩 복용하세요.", "무게는 약 2.5kg이고 길이는 120cm다.",
           "2019년 12월 31일 자정에 불꽃놀이가 시작됐다.", "인구의 약 18%가 65세 이상이다.",
           "제20대 대통령 선거는 2022년 3월 9일에 치러졌다.", "속도는 시속 300km에 이른다.",
           "매주 월요일 오전 9시에 주간 회의가 있다.", "지난해 매출은 전년 대비 7.3% 증가한 2조 원이었다.",
           "3박 4일 일정으로 15명이 참가했다.", "배터리 용량은 5,000mAh이고 충전은 45W를 지원한다."]
LATIN = ["애플의 iPhone 15 Pro는 USB-C 포트를 채택했다.", "구글 Gemini와 OpenAI의 GPT-4를 비교했다.",
         "NASA는 2025년에 Artemis III 임무를 계획하고 있다.", "LG전자가 CES 2024에서 OLED TV를 공개했다.",
         "K-pop 그룹 BLACKPINK의 월드투어가 LA에서 시작됐다.", "Python 3.12와 Rust 1.75로 서버를 다시 짰다.",
         "FIFA 월드컵 예선에서 대한민국이 2:1로 이겼다.", "Samsung Galaxy S24 Ultra 사전 예약이 시작됐다.",
         "WHO는 COVID-19 비상사태 종료를 선언했다.", "UN 안전보장이사회가 뉴욕에서 긴급회의를 열었다.",
         "SK하이닉스의 HBM3E 양산 소식에 주가가 올랐다.", "BBC와 CNN이 일제히 속보를 내보냈다.",
         "Tesla Model Y가 국내 수입차 판매 1위를 차지했다.", "넷플릭스 드라마 'The Glory'가 글로벌 1위에 올랐다."]
QUOTES = ["그는 \"내일 다시 오겠다\"고 말했다.", "『토지』의 작가 박경리는 원주에서 살았다.",
          "영화 <기생충>은 칸 영화제 황금종려상을 받았다.", "[속보] 서울 지하철 2호선 운행 중단",
          "'한국의 미' 특별전(국립중앙박물관)이 연장됐다.", "《훈민정음》 해례본은 국보 제70호다.",
          "(사진=연합뉴스) 이순신 장군 동상 앞에서 시민들이 모였다.", "“봄이 왔다”는 소식에 여의도 윤중로가 붐볐다.",
          "「춘향전」은 판소리로도 전해진다.", "【날씨】 강원 영동 지역에 대설주의보"]
MIXED = ["😀 오늘 잠실 야구장 가요! ⚾", "ㅋㅋㅋ 진짜 웃기다 ㅠㅠ", "e\u0301 café 김민수 씨",
         "서울\t부산\n대구", "  앞뒤 공백이 있는 문장  ", "😂😂😂", "가\u0000나 다라", "مرحبا 서울 שלום",
         "한국어 ELECTRA를 공유합니다."]


def gold_spans(chars: list[str]) -> list[list]:
    """Gold [start, end, tag] character spans, in text order."""
    return [list(span) for span in sorted(bio_spans(chars))]


OUTSIDE = OUT.with_name("outside-corpus.jsonl")
# commands none of the other corpora hold: assistant requests with names, places, times and amounts
OUTSIDE_COMMANDS = [f"{who}한테 {when} {what}" for who in ("민지", "박 과장님", "아빠", "김철수 팀장")
                    for when in ("내일 오전 10시에", "다음 주 월요일에", "오늘 저녁 7시 반에")
                    for what in ("전화하라고 알려줘.", "문자 보내줘.", "회의 일정 잡아줘.")] + \
    [f"{place}{what}" for place in ("해운대", "경복궁", "판교역", "제주공항", "동대문 디자인 플라자")
     for what in (" 가는 길 알려줘.", " 근처 주차장 찾아줘.", " 날씨 어때?", "까지 택시 불러줘.")]


def outside(klue_tsv: Path, nsmc_xz: Path, n_klue: int = 800, n_nsmc: int = 300) -> list[dict]:
    """Unlabelled sentences outside every set the export was tuned or checked on."""
    taken = {json.loads(l)["text"] for f in (OUT, CALIBRATION) for l in open(f, encoding="utf-8")}
    klue = [l.rstrip("\n").split("\t", 1) for l in open(klue_tsv, encoding="utf-8") if "\t" in l]
    klue = [(sid, t.strip()) for sid, t in klue if t.strip() and t.strip() not in taken and 8 <= len(t) <= 300]
    rng = random.Random(23)
    rows = [{"id": sid, "category": "review" if sid.endswith("nsmc") else "news", "text": t}
            for sid, t in rng.sample(klue, n_klue)]
    with lzma.open(nsmc_xz, "rt", encoding="utf-8") as f:
        reviews = [l.strip() for l in f if 10 <= len(l.strip()) <= 200]
    seen = taken | {r["text"] for r in rows}
    picks = [t for t in random.Random(29).sample(reviews, n_nsmc * 2) if t not in seen][:n_nsmc]
    rows += [{"id": f"nsmc-{i:04d}", "category": "review", "text": t} for i, t in enumerate(picks)]
    rows += [{"id": f"command2-{i:03d}", "category": "command", "text": t} for i, t in enumerate(OUTSIDE_COMMANDS)]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outside", nargs=2, metavar=("KLUE_TSV", "NSMC_XZ"), type=Path,
                    help="also write outside-corpus.jsonl from KLUE-NER train sentences and NSMC reviews")
    args = ap.parse_args()
    if args.outside:
        rows = outside(*args.outside)
        with open(OUTSIDE, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{OUTSIDE}: {len(rows)} texts")
        return
    sents = read_konec(DATA / "konec-dev.tsv", load_subtype_map())
    held = heldout_ids([s[0] for s in sents])
    rows = [{"id": sid, "category": "heldout", "text": text, "gold": gold_spans(chars)}
            for sid, text, chars in sents if sid in held]
    for cat, texts in (("command", COMMANDS), ("numbers", NUMBERS), ("latin", LATIN), ("quotes", QUOTES),
                       ("unicode", MIXED)):
        rows += [{"id": f"{cat}-{i:03d}", "category": cat, "text": t} for i, t in enumerate(texts)]
    train = [text for sid, text, _ in sents if sid not in held]
    rng = random.Random(7)
    for k in range(6):  # paragraphs of ~200 tokens and documents far past 512 tokens
        n = 8 if k < 3 else 40
        rows.append({"id": f"long-{k:03d}", "category": "paragraph" if k < 3 else "long",
                     "text": " ".join(rng.sample(train, n))})
    with open(OUT, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{OUT}: {len(rows)} texts")
    calib = random.Random(11).sample([(sid, text) for sid, text, _ in sents if sid not in held], 400)
    with open(CALIBRATION, "w", encoding="utf-8") as f:
        for sid, text in calib:
            f.write(json.dumps({"id": sid, "text": text}, ensure_ascii=False) + "\n")
    print(f"{CALIBRATION}: {len(calib)} training sentences for accuracy-aware quantization")


if __name__ == "__main__":
    main()
