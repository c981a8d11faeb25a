"""A Hub collection per study: one place that groups the adapters of a 21x21 matrix.

``create_collection(exists_ok=True)`` returns the existing collection of that title, so every push step
of a study (any shard, any rerun) finds the same one; ``add_collection_item(exists_ok=True)`` makes adding
an adapter twice harmless.
"""

from __future__ import annotations

import logging

from lm_forget.hub.deadline import hub_deadline, resolve_timeout
from lm_forget.hub.push import hub_call

logger = logging.getLogger(__name__)


def add_to_collection(title: str, repo_id: str, note: str, *, private: bool = True, description: str | None = None,
                      item_type: str = "model", timeout: float | None = None) -> str:
    """Add ``repo_id`` to the collection ``title`` of the repo's namespace (created if missing); returns its slug."""
    from huggingface_hub import HfApi

    namespace = repo_id.split("/")[0] if "/" in repo_id else None
    seconds = resolve_timeout(timeout)
    with hub_deadline(seconds) as requests:
        api = HfApi()
        collection = hub_call(lambda: api.create_collection(title, namespace=namespace, description=description,
                                                         private=private, exists_ok=True),
                           f"create collection {title!r}", seconds, requests)
        hub_call(lambda: api.add_collection_item(collection.slug, item_id=repo_id, item_type=item_type, note=note,
                                              exists_ok=True),
              f"add {repo_id} to collection {collection.slug}", seconds, requests)
    logger.info("added %s to collection %s", repo_id, collection.slug)
    return str(collection.slug)
