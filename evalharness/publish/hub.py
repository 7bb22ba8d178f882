"""Pushing an export folder to the Hugging Face Hub as a pull request.

Files are always written locally first; a push is one commit opened as a PR (the model or
dataset owner merges it). When the Hub cannot be reached (``HF_HUB_OFFLINE=1``, no network)
the command says which files were written and how to upload them later, and exits 2: the
user asked for a push that did not happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from evalharness.publish.common import PublishError

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

__all__ = ["HubUnreachableError", "hub_offline", "push_files", "remote_model_card", "unreachable"]


class HubUnreachableError(PublishError):
    """The files were written, but the Hub could not be reached to push them."""


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _upload_hint(folder: Path, repo_id: str, repo_type: str) -> str:
    kind = "" if repo_type == "model" else f" --repo-type {repo_type}"
    return f"upload them later with: hf upload {repo_id} {folder} .{kind} --create-pr"


def unreachable(folder: Path, repo_id: str, repo_type: str, why: str) -> HubUnreachableError:
    return HubUnreachableError(
        f"wrote {folder}; not pushed to {repo_id}: {why}; {_upload_hint(folder, repo_id, repo_type)}"
    )


def push_files(folder: Path, files: Sequence[Path], *, repo_id: str, repo_type: str, message: str) -> str:
    """Open a pull request adding ``files`` (paths inside ``folder``); returns the PR's URL."""
    if hub_offline():
        raise unreachable(folder, repo_id, repo_type, "the Hub is unreachable (HF_HUB_OFFLINE=1)")
    from huggingface_hub import CommitOperationAdd, HfApi

    operations = [CommitOperationAdd(path.relative_to(folder).as_posix(), str(path)) for path in files]
    try:
        info = HfApi().create_commit(
            repo_id, operations=operations, commit_message=message, repo_type=repo_type, create_pr=True
        )
    except Exception as exc:  # network, auth and HTTP errors of huggingface_hub's client alike
        raise unreachable(folder, repo_id, repo_type, f"{type(exc).__name__}: {exc}") from None
    return str(info.pr_url or info.commit_url)


def remote_model_card(repo_id: str, folder: Path) -> ModelCard | None:
    """The model repo's current card (None when it has no README), so a push merges into it
    instead of replacing the owner's text."""
    from huggingface_hub import ModelCard
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    try:
        return ModelCard.load(repo_id)
    except EntryNotFoundError:
        return None
    except RepositoryNotFoundError:
        raise PublishError(f"--repo-id {repo_id}: no such model repo on the Hub (or no access to it)") from None
    except Exception as exc:  # network and HTTP errors of huggingface_hub's client alike
        raise unreachable(folder, repo_id, "model", f"could not read its model card ({type(exc).__name__}: {exc})") from None
