"""One call for any method: ``gsa_prompt.aggregate(question, method="gsa", base_url=..., model=...)``.

:func:`aaggregate` is the async twin (use it inside a running event loop); both build an
:class:`~gsa_prompt.client.Endpoint` and :class:`~gsa_prompt.client.Client` from ``base_url`` / ``model``
unless given one, and turn a call ``budget`` into the method's ``n`` / ``rounds``
(:func:`~gsa_prompt.methods.budget_split`).
"""

from __future__ import annotations

from typing import Any

from gsa_prompt.client import Client, Endpoint, run_sync
from gsa_prompt.methods import METHODS, MethodResult, budget_split
from gsa_prompt.tasks import TaskKind

__all__ = ["aaggregate", "aggregate"]


def _client(client: Client | None, endpoint: Endpoint | None, base_url: str | None, model: str | None) -> Client:
    if client is not None:
        if endpoint is not None or base_url is not None or model is not None:
            raise ValueError("give either client or endpoint or base_url + model, not several")
        return client
    if endpoint is None:
        if base_url is None or model is None:
            raise ValueError("base_url and model are required when neither client nor endpoint is given")
        endpoint = Endpoint(base_url=base_url, model=model)
    elif base_url is not None or model is not None:
        raise ValueError("give either endpoint or base_url + model, not both")
    return Client(endpoint)


async def aaggregate(
    question: str,
    *,
    method: str = "gsa",
    task: str | TaskKind = "open",
    client: Client | None = None,
    endpoint: Endpoint | None = None,
    base_url: str | None = None,
    model: str | None = None,
    budget: int | None = None,
    **settings: Any,
) -> MethodResult:
    """Answer ``question`` with ``method`` (a :data:`~gsa_prompt.methods.METHODS` name) on one endpoint.

    Args:
        question: the question.
        method: ``greedy``, ``sc``, ``usc``, ``cfn``, ``bon``, ``self-refine`` or ``gsa``.
        task: the task kind (``math``, ``gsm8k``, ``answer_is``, ``multiple_choice``, ``code``, ``open``).
        client, endpoint, base_url, model: where to send requests (one of: a client, an endpoint, or both
            ``base_url`` and ``model``).
        budget: calls per question; sets ``n`` (or ``rounds``) by the paper's equal-budget rule.
        settings: the method's own keyword arguments (``n``, ``sample_temperature``, ``seed``, ...).

    Returns:
        The method's :class:`~gsa_prompt.methods.MethodResult`.

    Raises:
        ValueError: an unknown method, conflicting endpoint arguments, or a budget that also gives ``n``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if budget is not None:
        split = budget_split(method, budget)
        clash = sorted(set(split) & set(settings))
        if clash:
            raise ValueError(f"budget sets {', '.join(clash)}; do not give both")
        settings = {**settings, **split}
    return await METHODS[method](_client(client, endpoint, base_url, model), question, task, **settings)


def aggregate(
    question: str,
    *,
    method: str = "gsa",
    task: str | TaskKind = "open",
    client: Client | None = None,
    endpoint: Endpoint | None = None,
    base_url: str | None = None,
    model: str | None = None,
    budget: int | None = None,
    **settings: Any,
) -> MethodResult:
    """The synchronous :func:`aaggregate` (raises ``RuntimeError`` inside a running event loop)."""
    return run_sync(aaggregate(question, method=method, task=task, client=client, endpoint=endpoint,
                               base_url=base_url, model=model, budget=budget, **settings))  # fmt: skip
