"""The per-campaign token budget: what a campaign has spent, and whether one more call fits.

A candidate's `token_charge` counts against its campaign: while its call runs, the most that call
can use (`reservation`); once answered, the usage the provider reported; nothing after a failed
call. A call is only sent when the campaign's charges plus its own reservation stay within the
budget, checked under a lock on the campaign row, so concurrent jobs cannot overspend together.
"""

from __future__ import annotations

from django.db.models import Sum

from core.errors import Conflict
from tasks.models import Campaign, Candidate
from tasks.providers import GenerationRequest

# Chat formats add a few tokens per message (role, separators); 16 is a generous bound.
_TOKENS_PER_MESSAGE = 16


class BudgetExhausted(Conflict):
    default_code = "budget_exhausted"


def reservation(request: GenerationRequest) -> int:
    """An upper bound on the tokens one call can use.

    Byte-level BPE tokenizers never produce more tokens than the text has UTF-8 bytes, so the
    prompt's bytes bound its input tokens; `max_tokens` bounds the output.
    """
    texts = [request.system_prompt or ""] + [message.content for message in request.messages]
    prompt = sum(len(text.encode()) + _TOKENS_PER_MESSAGE for text in texts)
    return prompt + request.max_tokens


def tokens_spent(campaign_id: int) -> int:
    """Tokens charged to the campaign: answered calls' usage plus running calls' reservations."""
    total = Candidate.objects.filter(turn__task__campaign_id=campaign_id).aggregate(
        total=Sum("token_charge")
    )["total"]
    return int(total or 0)


def refusal(campaign: Campaign, spent: int, needed: int = 0) -> str:
    if needed:
        return (
            f"The campaign's token budget would be exceeded: {spent} of {campaign.token_budget} "
            f"tokens are spent or reserved and this call may use up to {needed}."
        )
    return f"The campaign has spent {spent} of its {campaign.token_budget}-token budget."


def ensure_budget_left(campaign: Campaign) -> None:
    """Refuses to start generation (409 `budget_exhausted`) once the budget is used up."""
    if campaign.token_budget is None:
        return
    spent = tokens_spent(campaign.pk)
    if spent >= campaign.token_budget:
        raise BudgetExhausted(refusal(campaign, spent) + " A lead can raise it.")


def fits_budget(campaign: Campaign, needed: int) -> tuple[bool, str]:
    """Whether a call needing `needed` tokens fits, and if not, why.

    With a budget, it locks the campaign row until commit: call it inside the transaction that
    records the reservation, so the next job's check sees it. Without one, no query at all.
    """
    if campaign.token_budget is None:
        return True, ""
    locked = Campaign.objects.select_for_update().only("id", "token_budget").get(pk=campaign.pk)
    if locked.token_budget is None:
        return True, ""
    spent = tokens_spent(locked.pk)
    if spent + needed > locked.token_budget:
        return False, refusal(locked, spent, needed)
    return True, ""
