#!/usr/bin/env python3
"""Prints a CloudFormation YAML template as JSON, short-form tags in their long form
(`!Sub x` -> {"Fn::Sub": x}, `!Ref x` -> {"Ref": x}, `!GetAtt a.b` -> {"Fn::GetAtt": ["a", "b"]}).
tests/infra_templates.rs reads both templates through it. Needs PyYAML (cfn-lint brings it).

    scripts/cfn-yaml-to-json.py template.yaml"""
import json
import sys

import yaml


class Loader(yaml.SafeLoader):
    pass


def intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    if suffix == "Condition":
        return {"Condition": value}
    return {"Fn::" + suffix: value}


Loader.add_multi_constructor("!", intrinsic)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: cfn-yaml-to-json.py TEMPLATE.yaml")
    with open(sys.argv[1], encoding="utf-8") as f:
        json.dump(yaml.load(f, Loader=Loader), sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()
