"""A styles file or a bank on S3 is read within the same limits as a local one: refused by the
size its HEAD declares before its body is read, and parsed line by line, on the real S3 server."""

import json

import pytest
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

from cotvtm import models
from cotvtm.errors import CotvtmError, ModelRefError
from cotvtm.jsonl import MAX_JSON_DEPTH, TextError, read_bounded
from cotvtm.music.style_file import read_styles


@pytest.fixture
def bucket(s3_env):  # noqa: F811
    name = s3_env.make_bucket()
    s3_env.client().put_object(Bucket=name, Key="t/there.bin", Body=b"z" * 1000)
    return name


def test_styles_and_banks_on_s3_are_bounded_and_parsed_by_line(s3_env, bucket, model_cache):  # noqa: F811
    client, endpoint = s3_env.client(), s3_env.endpoint
    client.put_object(Bucket=bucket, Key="s/big.csv", Body=b"key,style\n" + b"a.mp4,lo-fi\n" * 200)
    assert len(read_bounded(f"s3://{bucket}/s/big.csv", endpoint, 4096)) == 2410
    with pytest.raises(TextError, match="2410 bytes or more, over the limit of 1024 bytes"):
        read_bounded(f"s3://{bucket}/s/big.csv", endpoint, 1024)

    client.put_object(Bucket=bucket, Key="s/open.csv", Body=b'key,style\na.mp4,lo-fi\nb.mp4,"bright\nc.mp4,dark\n')
    with pytest.raises(CotvtmError, match=f"--styles s3://{bucket}/s/open.csv: line 3: a quote opens and never"):
        read_styles(f"s3://{bucket}/s/open.csv", endpoint)

    entry = {"id": "a", "caption": "a quiet lake", "description": "soft piano"}
    deep = json.dumps({**entry, "meta": json.loads("[" * 100 + "]" * 100)})
    client.put_object(Bucket=bucket, Key="b/bank.jsonl", Body=(json.dumps(entry) + "\n" + deep + "\n").encode())
    with pytest.raises(ModelRefError, match=f"line 2: JSON nested deeper than {MAX_JSON_DEPTH} levels"):
        models.resolve("tiny", cache_dir=model_cache, endpoint_url=endpoint, bank=f"s3://{bucket}/b/bank.jsonl")
