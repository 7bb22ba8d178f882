"""The prediction cache: exact round trips, content addressing, several writers at once."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

from evalharness.execution.cache import PredictionCache, decode_response, encode_response, request_key
from evalharness.types import (
    ClassifyRequest,
    ClassifyResponse,
    GenerateResponse,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    SpanResponse,
)
from tests.conftest import REPO


def test_cached_floats_round_trip_bit_exactly():
    awkward = (0.1 + 0.2, 1e-310, -0.0, 123456789.123456789, math.pi, float("inf"))
    response = ClassifyResponse(awkward, truncated=True)
    back = decode_response(encode_response(response))
    assert back == response and type(back) is ClassifyResponse and isinstance(back.scores, tuple)
    assert [x.hex() for x in back.scores] == [x.hex() for x in awkward]
    nan = decode_response(encode_response(LoglikelihoodResponse(float("nan"), False, 3)))
    assert math.isnan(nan.logprob) and nan.n_tokens == 3
    span = SpanResponse("Denver Broncos", 17, -1.25, None)
    assert decode_response(encode_response(span)) == span


def test_key_changes_with_request_options_and_model_but_not_with_tuple_spelling():
    base = request_key("m", "classify", ClassifyRequest("a", None), {})
    assert base == request_key("m", "classify", ClassifyRequest("a", None), {})
    assert base != request_key("m2", "classify", ClassifyRequest("a", None), {})
    assert base != request_key("m", "classify", ClassifyRequest("a", "b"), {})
    generate = request_key("m", "generate", "prompt", {"max_new_tokens": 8, "stop": ["\n"]})
    assert generate != request_key("m", "generate", "prompt", {"max_new_tokens": 9, "stop": ["\n"]})
    # option order does not matter (canonical JSON)
    assert generate == request_key("m", "generate", "prompt", {"stop": ["\n"], "max_new_tokens": 8})
    assert request_key("m", "loglikelihood", LoglikelihoodRequest("a", " b"), {}) != request_key(
        "m", "loglikelihood", LoglikelihoodRequest("a ", "b"), {}
    )


def test_cache_persists_across_connections_and_replaces_rows(tmp_path):
    path = tmp_path / "cache" / "predictions.sqlite"
    with PredictionCache(path) as cache:
        cache.put_many([("k1", "generate", GenerateResponse("old", 2))])
        cache.put_many([("k1", "generate", GenerateResponse("new", 3)), ("k2", "generate", GenerateResponse("x", 1))])
    with PredictionCache(path) as cache:
        assert len(cache) == 2
        found = cache.get_many(["k1", "k2", "absent", "k1"])
    assert found == {"k1": GenerateResponse("new", 3), "k2": GenerateResponse("x", 1)}


def test_several_processes_writing_one_cache_lose_nothing(tmp_path):
    path = tmp_path / "shared.sqlite"
    PredictionCache(path).close()
    script = textwrap.dedent(
        f"""
        import sys
        from evalharness.execution.cache import PredictionCache
        from evalharness.types import GenerateResponse
        worker = int(sys.argv[1])
        cache = PredictionCache({str(path)!r})
        for batch in range(20):
            cache.put_many([(f"w{{worker}}-{{batch}}-{{i}}", "generate", GenerateResponse(str(i), i)) for i in range(10)])
        cache.close()
        """
    )
    env = {"PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen([sys.executable, "-c", script, str(w)], env=env) for w in range(4)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    with PredictionCache(path) as cache:
        assert len(cache) == 4 * 20 * 10
        assert cache.get_many(["w3-19-9"]) == {"w3-19-9": GenerateResponse("9", 9)}
    import sqlite3

    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_model_key_separates_dtype_and_device_type_but_not_the_gpu_index():
    from dataclasses import replace

    from evalharness.execution.cache import model_key
    from evalharness.models.base import Conventions, ModelInfo

    base = ModelInfo(name="m", path="m", kind="causal_lm", fingerprint="sha256:abc", architecture="GPT2LMHeadModel",
                     device="cpu", dtype="float32", num_parameters=1, notes={"max_length": 64}, conventions=Conventions(max_length=64))

    def info(**changes):
        return replace(base, **changes)

    assert model_key(info()) == model_key(info())
    assert model_key(info()) != model_key(info(dtype="bfloat16"))
    assert model_key(info()) != model_key(info(device="cuda:0"))
    assert model_key(info(device="cuda:0")) == model_key(info(device="cuda:1"))
    assert model_key(info()) != model_key(info(fingerprint="sha256:def"))
    assert model_key(info()) != model_key(info(conventions=Conventions(max_length=128)))


def test_rewording_a_model_note_does_not_invalidate_the_cache():
    from dataclasses import replace

    from evalharness.execution.cache import model_key
    from evalharness.models.base import Conventions, ModelInfo

    conventions = Conventions(tokenizer="GPT2TokenizerFast", adds_bos=False, prefix_token="<|endoftext|>", max_length=64)
    info = ModelInfo(name="m", path="m", kind="causal_lm", fingerprint="sha256:abc", architecture="GPT2LMHeadModel", device="cpu",
                     dtype="float32", num_parameters=1, notes={"bos": "the tokenizer adds no BOS"}, conventions=conventions)
    reworded = replace(info, notes={"bos": "no BOS is added by the tokenizer; inputs are encoded as they are"})
    assert model_key(reworded) == model_key(info)
    for change in ({"adds_bos": True}, {"prefix_token": "<s>"}, {"padding_side": "left"}, {"backend": "vllm"}, {"tokenizer": "sha256:1"}):
        assert model_key(replace(info, conventions=replace(conventions, **change))) != model_key(info), change


def test_loaded_checkpoints_state_their_tokenizer_conventions(tiny_causal_lm):
    from evalharness.models.loading import load_model

    adapter = load_model(str(tiny_causal_lm), device="cpu")
    conventions = adapter.info.conventions
    assert conventions.backend == "hf" and conventions.tokenizer and conventions.max_length == adapter.max_length
    assert conventions.adds_bos == adapter.adds_bos and conventions.pad_token == adapter.tokenizer.pad_token
