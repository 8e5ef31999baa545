from reviews.agreement import ReviewData, decide_round

POLICY = {"max_score_spread": 1, "preference_sign_must_agree": True}


def sheet(score):
    return [{"turn": 1, "slot": s, "criterion": "correctness", "score": score} for s in "AB"]


def test_a_majority_of_request_changes_wins_over_agreement():
    reviews = [
        ReviewData(-2, "request_changes", sheet(4)),
        ReviewData(-2, "request_changes", sheet(4)),
        ReviewData(-2, "approve", sheet(4)),
    ]
    assert decide_round(reviews, POLICY).kind == "changes_requested"


def test_a_majority_of_reject_rejects():
    reviews = [
        ReviewData(1, "reject", sheet(2)),
        ReviewData(1, "reject", sheet(2)),
        ReviewData(1, "approve", sheet(2)),
    ]
    assert decide_round(reviews, POLICY).kind == "rejected"


def test_no_majority_verdict_falls_to_the_policy():
    reviews = [
        ReviewData(1, "reject", sheet(3)),
        ReviewData(1, "request_changes", sheet(3)),
        ReviewData(1, "approve", sheet(3)),
    ]
    assert decide_round(reviews, POLICY).kind == "consensus"


def test_agreeing_signs_and_spread_within_threshold_is_consensus_with_means():
    reviews = [
        ReviewData(-1, "approve", sheet(4)),
        ReviewData(-3, "approve", sheet(5)),
        ReviewData(-2, "approve", sheet(4)),
    ]
    decision = decide_round(reviews, POLICY)
    assert decision.kind == "consensus"
    assert decision.preference == -2
    assert decision.scores[0] == {
        "turn": 1,
        "slot": "A",
        "criterion": "correctness",
        "score": 4.333,
    }


def test_a_tie_against_a_preference_disagrees():
    reviews = [
        ReviewData(0, "approve", sheet(4)),
        ReviewData(2, "approve", sheet(4)),
        ReviewData(1, "approve", sheet(4)),
    ]
    decision = decide_round(reviews, POLICY)
    assert decision.kind == "disagreement"
    assert decision.disagreement["preference"] == {
        "values": [0, 2, 1],
        "signs_agree": False,
        "spread": 2,
        "disagrees": True,
    }


def test_all_ties_agree():
    reviews = [ReviewData(0, "approve", sheet(4))] * 3
    assert decide_round(reviews, POLICY).kind == "consensus"


def test_a_score_spread_over_the_threshold_names_the_criterion():
    reviews = [
        ReviewData(1, "approve", sheet(5)),
        ReviewData(1, "approve", sheet(3)),
        ReviewData(1, "approve", sheet(4)),
    ]
    decision = decide_round(reviews, POLICY)
    assert decision.kind == "disagreement"
    assert [
        (c["slot"], c["criterion"], c["spread"]) for c in decision.disagreement["criteria"]
    ] == [
        ("A", "correctness", 2),
        ("B", "correctness", 2),
    ]
    assert decision.disagreement["preference"]["disagrees"] is False


def test_a_policy_may_ignore_preference_signs():
    reviews = [ReviewData(-1, "approve", sheet(4)), ReviewData(1, "approve", sheet(4))]
    assert (
        decide_round(reviews, {"max_score_spread": 1, "preference_sign_must_agree": False}).kind
        == "consensus"
    )
