"""Prompt construction matches lm-evaluation-harness's task definitions on fixed examples.

The expected strings are written out from the harness's YAML/utils definitions, not produced by our code.
"""

from hfprune.evaluation.tasks import get_task


def _pairs(task, doc, lang):
    prompt = get_task(task).build(doc, lang)
    return [c + x for c, x in zip(prompt.contexts, prompt.continuations)], prompt


def test_xcopa_drops_the_period_adds_the_connector_and_lowers_the_choice():
    doc = {
        "premise": "Kifaa kilikuwa kimefungwa.",
        "choice1": "Kilikuwa nyepesi.",
        "choice2": "Kilikuwa kidogo.",
        "question": "cause",
        "label": 1,
    }
    full, prompt = _pairs("xcopa", doc, "sw")
    assert prompt.contexts[0] == "Kifaa kilikuwa kimefungwa kwa sababu"
    assert full == [
        "Kifaa kilikuwa kimefungwa kwa sababu kilikuwa nyepesi.",
        "Kifaa kilikuwa kimefungwa kwa sababu kilikuwa kidogo.",
    ]
    assert prompt.gold == 1
    effect = _pairs("xcopa", {**doc, "question": "effect"}, "zh")[1]
    assert effect.contexts[0] == "Kifaa kilikuwa kimefungwa 所以"


def test_xstorycloze_joins_four_sentences_and_appends_the_ending():
    doc = {f"input_sentence_{i}": f"S{i}." for i in range(1, 5)} | {
        "sentence_quiz1": "Bad end.",
        "sentence_quiz2": "Good end.",
        "answer_right_ending": 2,
    }
    full, prompt = _pairs("xstorycloze", doc, "en")
    assert full == ["S1. S2. S3. S4. Bad end.", "S1. S2. S3. S4. Good end."]
    assert prompt.gold == 1


def test_xwinograd_varies_the_context_and_shares_the_target():
    doc = {
        "sentence": "The trophy doesn't fit into the suitcase because _ is too large.",
        "option1": "the trophy",
        "option2": "the suitcase",
        "answer": "1",
    }
    _, prompt = _pairs("xwinograd", doc, "en")
    assert prompt.contexts == (
        "The trophy doesn't fit into the suitcase because the trophy",
        "The trophy doesn't fit into the suitcase because the suitcase",
    )
    assert prompt.continuations == (" is too large.", " is too large.")
    assert prompt.gold == 0


def test_pawsx_has_empty_context_no_then_yes_and_detokenizes():
    doc = {"sentence1": 'He said , " it is n\'t here ( now ) " .', "sentence2": "Es ist nicht hier.", "label": 1}
    full, prompt = _pairs("pawsx", doc, "de")
    assert prompt.contexts == ("", "")
    # the harness's general_detokenize also glues quotes to their neighbours: ' "' -> '"'
    assert full == [
        'He said,"it isn\'t here (now)", richtig? Nein, es ist nicht hier.',
        'He said,"it isn\'t here (now)", richtig? Ja, es ist nicht hier.',
    ]
    assert prompt.gold == 1


def test_xnli_asks_right_and_offers_yes_also_no():
    doc = {"premise": "And he said, Mama, I'm home.", "hypothesis": "He called his mom.", "label": 2}
    full, prompt = _pairs("xnli", doc, "en")
    assert full == [
        "And he said, Mama, I'm home., right? Yes, He called his mom.",
        "And he said, Mama, I'm home., right? Also, He called his mom.",
        "And he said, Mama, I'm home., right? No, He called his mom.",
    ]
    assert prompt.gold == 2


def test_belebele_letters_the_answers():
    doc = {
        "flores_passage": "Passage.",
        "question": " Why? ",
        "mc_answer1": "a1",
        "mc_answer2": "a2",
        "mc_answer3": "a3",
        "mc_answer4": "a4",
        "correct_answer_num": "3",
    }
    _, prompt = _pairs("belebele", doc, "en")
    assert prompt.contexts[0] == "P: Passage.\nQ: Why?\nA: a1\nB: a2\nC: a3\nD: a4\nAnswer\uff1a"
    assert prompt.continuations == (" A", " B", " C", " D")
    assert prompt.choice_texts == ("A", "B", "C", "D")
    assert prompt.gold == 2
