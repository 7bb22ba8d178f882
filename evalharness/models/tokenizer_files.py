"""The tokenizer must be the checkpoint's own, built from its files.

When a checkpoint lacks its tokenizer files, transformers (5.x) does not fail: it builds the
class named by ``config.json``'s model type with an empty vocabulary (every word ``[UNK]``),
rebuilds a ``tokenizer.json`` as whatever ``tokenizer_config.json``'s ``tokenizer_class``
says (a WordPiece vocabulary turned into a merge-less BPE), falls back to a generic class
for a class name it does not know, or applies class defaults (lower-casing a cased
vocabulary) when ``tokenizer_config.json`` is missing. Each gives plausible numbers. So the
settings file must exist, the loaded tokenizer is checked against the files it should come
from, and ``--tokenizer DIR`` is the explicit, recorded way to take the tokenizer from
somewhere else.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from evalharness.errors import ModelError
from evalharness.jsonvalues import JSONObject

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["TOKENIZER_FLAG", "check_tokenizer_fits", "load_tokenizer"]

TOKENIZER_FLAG = "--tokenizer"
TOKENIZER_JSON = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
# Files that hold settings rather than a vocabulary (fingerprinted with it under --tokenizer).
_SETTINGS_FILES = (CONFIG_FILE, "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "chat_template.json")
# Case, accents, digits, punctuation, runs of spaces, tabs, newlines, CJK and emoji: a
# tokenizer rebuilt with other normalisation, pre-tokenisation or model differs on it.
_PROBE = "The Quick brown FOX, naïve café Über straße: 2 + 30 = 32 — 'quoted'  two  spaces\ttab\nnew line 日本語 🙂"
_FIX = f"Add the tokenizer files saved with the checkpoint (tokenizer.save_pretrained), or pass {TOKENIZER_FLAG} DIR naming the tokenizer it was trained with"


def _read_config(directory: Path, where: str) -> JSONObject:
    """``tokenizer_config.json``. Without it every setting (lower-casing, special tokens,
    maximum length, decoding clean-up) is a class default: that is acceptable only when a
    ``tokenizer.json`` fixes the whole pipeline (the loaded tokenizer is then checked against
    it, so a class default that changes tokenization is still refused); otherwise refused."""
    path = directory / CONFIG_FILE
    if not path.is_file() and (directory / TOKENIZER_JSON).is_file():
        return {}
    if not path.is_file():
        raise ModelError(
            f"{where}: no {CONFIG_FILE}: transformers would fall back to the defaults of the tokenizer class that "
            f"config.json's model type maps to (lower-casing, special tokens, maximum length, decoding), which "
            f"nothing in the checkpoint confirms. {_FIX}"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{where}: {path} is unreadable ({exc})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{where}: {path} is not a JSON object")
    return config


def _refuse_redirected_files(directory: Path, config: JSONObject, where: str) -> None:
    """A ``*_file`` setting naming a file outside the directory: transformers 4.x reads it."""
    # Paths compared as written, symlinks not followed: a hub snapshot's files are links into
    # the cache's blob folder, which is outside the snapshot directory.
    root = Path(os.path.abspath(directory))
    for key, value in config.items():
        if not key.endswith("_file") or not isinstance(value, str) or not value:
            continue
        target = Path(os.path.abspath(directory / value))
        if target.is_file() and root not in target.parents:
            raise ModelError(
                f"{where}: {CONFIG_FILE} field '{key}' points at {value}, outside the checkpoint; the tokenizer "
                f"must come from the checkpoint's own files. {_FIX}"
            )


def _refuse_unknown_class(config: JSONObject, where: str, trust_remote_code: bool) -> None:
    """transformers silently uses a generic tokenizer for a ``tokenizer_class`` it does not know."""
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    declared = config.get("tokenizer_class")
    if not isinstance(declared, str) or (trust_remote_code and config.get("auto_map")):
        return
    if tokenizer_class_from_name(declared) is None:
        raise ModelError(
            f"{where}: {CONFIG_FILE} names tokenizer_class '{declared}', which this transformers does not know; "
            f"it would silently build a generic tokenizer instead. Correct tokenizer_class, or pass "
            f"{TOKENIZER_FLAG} DIR naming the tokenizer the model was trained with"
        )


def _vocabulary_files(tokenizer: PreTrainedTokenizerBase, directory: Path, where: str) -> list[str]:
    """The vocabulary files the loaded class reads that are in ``directory``; none is a refusal."""
    names = set(getattr(type(tokenizer), "vocab_files_names", {}).values())
    if getattr(tokenizer, "is_fast", False):
        names.add(TOKENIZER_JSON)
    names -= set(_SETTINGS_FILES)
    present = sorted(name for name in names if (directory / name).is_file())
    if not present:
        raise ModelError(
            f"{where}: no tokenizer vocabulary: {type(tokenizer).__name__} reads {', '.join(sorted(names))}, and none "
            f"of them is in {directory}; transformers would build an empty or default vocabulary instead. {_FIX}"
        )
    return present


def _check_against_tokenizer_json(tokenizer: PreTrainedTokenizerBase, backend: Tokenizer, directory: Path, where: str) -> None:
    """The tokenizer transformers built must tokenize like ``tokenizer.json`` itself and must not
    have invented special tokens that the file's vocabulary lacks."""
    from tokenizers import Tokenizer

    try:
        raw = Tokenizer.from_file(str(directory / TOKENIZER_JSON))
    except Exception as exc:  # a file transformers read but tokenizers cannot: do not guess
        raise ModelError(f"{where}: {directory / TOKENIZER_JSON} is unreadable ({exc})") from None
    name = type(tokenizer).__name__
    built = _tokens(backend, f"{where}: the tokenizer transformers built ({name})")
    own = _tokens(raw, f"{where}: {directory / TOKENIZER_JSON}")
    if built != own:
        first = next((i for i, (a, b) in enumerate(zip(built, own)) if a != b), min(len(built), len(own)))
        raise ModelError(
            f"{where}: the tokenizer transformers built ({name}) does not tokenize like "
            f"{directory / TOKENIZER_JSON}: from token {first} of a probe text it gives {built[first:first + 6]} "
            f"where the file gives {own[first:first + 6]}. {CONFIG_FILE}'s tokenizer_class or settings (or the "
            f"class's defaults for settings it omits) do not match the files. {_FIX}"
        )
    vocabulary = raw.get_vocab(with_added_tokens=True)
    invented = sorted(token for token in tokenizer.all_special_tokens if token not in vocabulary)
    if invented:
        raise ModelError(
            f"{where}: {name} uses special token(s) {invented} that {TOKENIZER_JSON} does not contain; transformers "
            f"added them as new ids the model never saw (they come from {CONFIG_FILE} or {name}'s defaults). {_FIX}"
        )


def _tokens(backend: Tokenizer, what: str) -> list[str]:
    """The probe's tokens without special tokens: inserting those is tokenizer_config.json's
    business (add_bos_token, ...), which transformers applies on top of the file."""
    try:
        return list(backend.encode(_PROBE, add_special_tokens=False).tokens)
    except Exception as exc:  # e.g. a WordPiece rebuilt over a vocabulary without its [UNK]
        raise ModelError(f"{what} cannot tokenize text ({exc}); the tokenizer settings do not match its files. {_FIX}") from None


def _fingerprint(directory: Path, names: list[str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(names):
        digest.update(name.encode() + b"\0" + (directory / name).read_bytes())
    return "sha256:" + digest.hexdigest()[:16]


def load_tokenizer(directory: Path, *, trust_remote_code: bool, given: str | None = None) -> tuple[PreTrainedTokenizerBase, JSONObject]:
    """The tokenizer in ``directory`` (the checkpoint, or ``given`` = ``--tokenizer``), checked
    against its files; returns it with the notes for the run record."""
    from transformers import AutoTokenizer

    where = f"{TOKENIZER_FLAG} {given}" if given else str(directory)
    config = _read_config(directory, where)
    _refuse_redirected_files(directory, config, where)
    _refuse_unknown_class(config, where, trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=trust_remote_code)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:400]
        raise ModelError(f"{where}: cannot load the tokenizer ({type(exc).__name__}: {reason}). {_FIX}") from None
    files = _vocabulary_files(tokenizer, directory, where)
    if TOKENIZER_JSON in files and hasattr(tokenizer, "backend_tokenizer"):  # a tokenizers-backed class's own Tokenizer
        _check_against_tokenizer_json(tokenizer, tokenizer.backend_tokenizer, directory, where)
    notes: JSONObject = {}
    if not config:
        notes["tokenizer_config"] = (
            f"no {CONFIG_FILE}: settings from {TOKENIZER_JSON} and {type(tokenizer).__name__}'s defaults "
            f"(checked to tokenize exactly as {TOKENIZER_JSON})"
        )
    if not given:
        return tokenizer, notes
    used = sorted(files + [name for name in _SETTINGS_FILES if (directory / name).is_file()])
    return tokenizer, {
        **notes,
        "tokenizer_source": {"path": given, "class": type(tokenizer).__name__, "files": [*used], "fingerprint": _fingerprint(directory, used)},
    }


def check_tokenizer_fits(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, *, where: str) -> None:
    """Every token id must have a row in the model's input embedding."""
    try:
        rows = int(getattr(model.get_input_embeddings(), "num_embeddings"))  # declared a bare Module
    except (AttributeError, NotImplementedError, TypeError):  # no single input embedding to check
        return
    if len(tokenizer) > rows:
        raise ModelError(
            f"{where}: the tokenizer has {len(tokenizer)} tokens but {type(model).__name__}'s input embedding has "
            f"{rows} rows: ids {rows} and above cannot be embedded. The tokenizer belongs to another model, or tokens "
            f"were added without resizing the model. {_FIX}"
        )
