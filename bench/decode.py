"""Decoding cost: a typical 30-attribute bag, and a 100-bag report batch, against protobuf's parse.

Usage: python bench/decode.py
"""

from __future__ import annotations

import argparse

from _common import per_call_us

from mixerd.api.mixer.v1 import attributes_pb2, mixer_pb2
from mixerd.attribute import decode_attributes, decode_report, encode_attributes, encode_report
from mixerd.testing import typical_http_bag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time budget of each timed loop")
    args = parser.parse_args()

    bag = typical_http_bag()
    data = encode_attributes(bag).SerializeToString()
    parse = attributes_pb2.CompressedAttributes.FromString
    parsed = parse(data)
    parse_us = per_call_us(lambda: parse(data), seconds=args.seconds)
    decode_us = per_call_us(lambda: decode_attributes(parsed), seconds=args.seconds)
    both_us = per_call_us(lambda: decode_attributes(parse(data)), seconds=args.seconds)
    print(f"bag: {len(bag)} attributes, {len(data)} bytes, {len(parsed.words)} message words")
    print(f"  protobuf parse (baseline)       {parse_us:8.2f} us")
    print(f"  decode_attributes               {decode_us:8.2f} us   {decode_us / parse_us:5.1f}x parse")
    print(f"  parse + decode                  {both_us:8.2f} us   {both_us / parse_us:5.1f}x parse")

    for delta in (False, True):
        batch = encode_report([typical_http_bag(i) for i in range(100)], delta=delta).SerializeToString()
        parse_report = mixer_pb2.ReportRequest.FromString
        base = per_call_us(lambda b=batch, p=parse_report: p(b), seconds=args.seconds)
        full = per_call_us(lambda b=batch, p=parse_report: list(decode_report(p(b))), seconds=args.seconds)
        label = "delta" if delta else "independent"
        print(f"report batch of 100 bags ({label}, {len(batch)} bytes)")
        print(f"  protobuf parse (baseline)       {base / 100:8.2f} us/bag")
        print(f"  parse + decode_report           {full / 100:8.2f} us/bag {full / base:5.1f}x parse")


if __name__ == "__main__":
    main()
