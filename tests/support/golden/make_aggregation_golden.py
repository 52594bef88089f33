"""Regenerate aggregation-golden.json: the transformers pipeline's answers on fixed logits.

For each text: the stand-in's tokens (ids, offsets, special mask, strings), its PyTorch logits, and the
entity dicts of `pipeline("token-classification", aggregation_strategy=S)` for all five strategies
(the pipeline runs the same model on the same ids, so it sees the same logits). The lean tests feed the logits to koner's aggregation alone
(no torch, no transformers, no model run) and expect the pipeline's dicts.

Run from a checkout with the export extra: python tests/support/golden/make_aggregation_golden.py
"""
import json
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

ROOT = Path(__file__).resolve().parents[3]
OUT = Path(__file__).with_name("aggregation-golden.json")
STRATEGIES = ("none", "simple", "first", "average", "max")
TEXTS = [
    "서울역으로 안내해줘.",
    "아이유 노래 검색해줘.",
    "에어컨 온도 3도 올려줘.",
    "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다.",
    "2023년 3월 15일 오후 3시에 삼성전자 본사에서 이재용 회장이 기자회견을 열었다.",
    "BTS 신곡 틀어줘.",
    "토트넘 홋스퍼의 손흥민이 27회차 경기에서 골을 넣었다.",
    "서울 서초구 반포대로 201에 있는 국립중앙도서관",
    "😀 부산 날씨 알려줘 👨‍👩‍👧",
    "ㅋㅋㅋ 뷁뷁 ᄀᄁ 語 Ω",
    "「기생충」은 봉준호 감독의 2019년 영화로, 칸 영화제에서 황금종려상을 받았다.",
    "KTX-산천 열차는 오전 9시 30분 용산역을 출발해 목포역에 12시 45분 도착한다.",
    "코로나19 확진자는 1,234명으로 전날보다 56명 늘었다고 질병관리청이 밝혔다.",
    "삼성전자·LG전자·SK하이닉스 주가가 일제히 올랐다.",
]


def main() -> None:
    folder = ROOT / "standin" / "model"
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForTokenClassification.from_pretrained(folder).eval()
    cases = []
    for text in TEXTS:
        enc = tok(text, return_tensors="pt", return_offsets_mapping=True, return_special_tokens_mask=True)
        with torch.no_grad():
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                           token_type_ids=torch.zeros_like(enc["input_ids"])).logits[0].numpy()
        ids = enc["input_ids"][0].tolist()
        case = {"text": text, "ids": ids, "offsets": enc["offset_mapping"][0].tolist(),
                "special": enc["special_tokens_mask"][0].tolist(), "strings": tok.convert_ids_to_tokens(ids),
                "logits": [[float(str(x)) for x in row] for row in logits.astype(np.float32)],  # shortest float32 text
                "expected": {}}
        for s in STRATEGIES:
            pipe = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy=s, device=-1)
            ents = pipe(text)  # the same model on the same ids: the same logits as recorded above
            case["expected"][s] = [{k: (float(v) if k == "score" else int(v) if k in ("start", "end", "index") else v)
                                    for k, v in e.items()} for e in ents]
        cases.append(case)
    OUT.write_text(json.dumps({"labels": [model.config.id2label[i] for i in range(model.config.num_labels)],
                               "cases": cases}, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {OUT} ({len(cases)} texts)")


if __name__ == "__main__":
    main()
