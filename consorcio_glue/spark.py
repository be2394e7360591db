"""Placeholder: replaced below."""
import os


def wanted(args) -> bool:
    if args.spark == "off":
        return False
    return args.spark == "on" or "PYSPARK_GATEWAY_PORT" in os.environ


def load_table(args, pipes) -> dict:
    raise NotImplementedError
