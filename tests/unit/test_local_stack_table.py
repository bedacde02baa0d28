"""The local stack keeps data across restarts: a table made from an older template
gets the indexes the current template adds, instead of failing at the first query."""

from __future__ import annotations

from pathlib import Path

import boto3
from moto import mock_aws

from session_tracker_local.stack import LocalStack, StackOptions

ROOT = Path(__file__).resolve().parents[2]


def test_an_existing_table_gets_the_indexes_it_lacks(monkeypatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    with mock_aws():
        stack = LocalStack(StackOptions(root=ROOT, table_name="kept-table"))
        client = boto3.client("dynamodb", region_name="us-east-1")
        request = stack.template.create_table_request("kept-table")
        wanted = {g["IndexName"] for g in request["GlobalSecondaryIndexes"]}
        kept = request["GlobalSecondaryIndexes"][:1]
        used = {"PK", "SK"} | {k["AttributeName"] for g in kept for k in g["KeySchema"]}
        old = dict(
            request,
            GlobalSecondaryIndexes=kept,
            AttributeDefinitions=[a for a in request["AttributeDefinitions"] if a["AttributeName"] in used],
        )
        client.create_table(**old)

        stack._create_table()

        table = client.describe_table(TableName="kept-table")["Table"]
        assert {g["IndexName"] for g in table["GlobalSecondaryIndexes"]} == wanted
