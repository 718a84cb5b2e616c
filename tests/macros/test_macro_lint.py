"""Lint: each rule, its severity, its position, and a message that names the text and the fix."""

from __future__ import annotations

import pytest

from macros import Context, Finding, lint

GOOD = "https://tracker.example/postback?cid=#fobs#&payout=#ca#&txid=#txid#"


def codes(template: str, context: Context = Context.URL) -> list[tuple[str, str]]:
    return [(f.severity, f.code) for f in lint(template, context)]


def only(template: str, code: str, context: Context = Context.URL) -> Finding:
    found = [f for f in lint(template, context) if f.code == code]
    assert len(found) == 1, lint(template, context)
    return found[0]


def test_a_good_template_has_no_findings() -> None:
    assert lint(GOOD) == []


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("http://yourdomain.com/pixel.track?sid=#fobs#&orderid=#on#", [("warning", "insecure_http")]),
        ("https://t.example/pb?payout=#ca#", [("warning", "no_click_macro")]),
        ("https://t.example/pb?cid=#fobs5#", []),
        ("https://t.example/pb?cid=#clickid#", [("warning", "no_click_macro")]),
        ("/pb?cid=#fobs#", [("error", "not_absolute_url")]),
        ("ftp://t.example/pb?cid=#fobs#", [("error", "not_absolute_url")]),
        ("https:///pb?cid=#fobs#", [("error", "not_absolute_url")]),
        ("https://t.example/pb?cid=#fobs#&x=" + "a" * 2048, [("error", "too_long")]),
        ("https://#fobs#.t.example/pb?c=#fobs2#", [("error", "macro_in_host")]),
        ("https://t.example/pb?cid=#fobs#&u=#fobs:raw#", [("warning", "raw_modifier")]),
        ("https://t.example/pb?cid=#fobs#&t=#et:epoch#", [("error", "unknown_modifier")]),
        ("https://t.example/pb?cid=#fobs#&t=#fobs:cents#", [("error", "modifier_not_applicable")]),
        ("https://t.example/pb?cid=#FOBS#&c=#fobs2#", [("error", "wrong_case")]),
        ("https://t.example/pb?cid=#fobs#&o=#ordr#", [("error", "unknown_macro")]),
        ("https://t.example/pb?cid=#fobs#&o=#on", [("error", "unclosed_macro")]),
        ("https://t.example/pb?cid=#fobs#&p=#s2#", [("error", "foreign_syntax")]),
        ("https://t.example/pb?cid=#fobs##o=#on#", [("warning", "macro_in_fragment")]),
        ("https://t.example/pb?cid=#fobs#&payout=#sa#", [("warning", "sale_amount_as_payout")]),
        ("https://t.example/pb?cid=#fobs#&Revenue=#sa:cents#", [("warning", "sale_amount_as_payout")]),
        ("https://t.example/pb?cid=#fobs#&amount=#sa#&payout=#ca#", []),
    ],
)
def test_url_rules(template: str, expected: list[tuple[str, str]]) -> None:
    assert codes(template) == expected


@pytest.mark.parametrize(
    ("pasted", "ours"),
    [
        ("{aff_sub}", "#fobs#"),
        ("{aff_sub3}", "#fobs3#"),
        ("{sub1}", "#fobs#"),
        ("{sub2}", "#fobs2#"),
        ("{SubId1}", "#fobs#"),
        ("{transaction_id}", "#clickid#"),
        ("{clickid}", "#fobs#"),
        ("{cf_click_id}", "#fobs#"),
        ("{payout}", "#ca#"),
        ("{sale_amount}", "#sa#"),
        ("{sum}", "#ca#"),
        ("{currency}", "#currency#"),
        ("{Status}", "#status#"),
        ("!!!clickRef!!!", "#fobs#"),
        ("!!!commission!!!", "#ca#"),
        ("!!orderNumber!!", "#on#"),
        ("#s1#", "#fobs#"),
        ("#s2#", "#fobs2#"),
        ("#price#", "#ca#"),
        ("#leadid#", "#flx_salesid#"),
    ],
)
def test_foreign_syntax_says_what_our_macro_is(pasted: str, ours: str) -> None:
    template = f"https://t.example/pb?cid=#fobs#&x={pasted}"
    finding = only(template, "foreign_syntax")
    assert finding.severity == "error"
    assert template[finding.start : finding.end] == pasted
    assert pasted in finding.message
    assert f"here it is {ours}" in finding.message


def test_sub_ids_beyond_five_say_only_five_come_back() -> None:
    assert "#fobs#..#fobs5#" in only("https://t.example/?c=#fobs#&x={sub7}", "foreign_syntax").message


def test_an_unknown_curly_placeholder_is_an_error_in_urls() -> None:
    finding = only("https://t.example/?c=#fobs#&x={whatever}", "foreign_syntax")
    assert "{whatever}" in finding.message and "#name#" in finding.message


@pytest.mark.parametrize(
    ("template", "hint"),
    [
        ("https://t.example/postback?cid=REPLACE&payout=OPTIONAL", "for cid put #fobs#"),
        ("https://t.example/postback?cid=#fobs#&payout=OPTIONAL", "for payout put #ca#"),
        ("https://t.example/postback?cid=#fobs#&txid=OPTIONAL", "for txid put #txid#"),
        (
            "https://t.example/postback?cid=#fobs#&conversion_time=REPLACE",
            "for conversion_time put #et:unix#",
        ),
        ("https://t.example/postback?cid=#fobs#&zzz=OPTIONAL", "or remove the parameter"),
    ],
)
def test_tracker_placeholders_suggest_the_macro_for_the_parameter(template: str, hint: str) -> None:
    findings = [f for f in lint(template) if f.code == "foreign_syntax"]
    assert findings and all(f.severity == "error" for f in findings)
    assert any(hint in f.message for f in findings)


def test_unknown_macro_suggests_the_closest_name() -> None:
    finding = only("https://t.example/?c=#fobs#&o=#fbos2#", "unknown_macro")
    assert finding.message == "Unknown macro #fbos2#; did you mean #fobs2#?"


def test_unknown_macro_without_a_close_name_points_to_the_list() -> None:
    assert "see the macro list" in only("https://t.example/?c=#fobs#&o=#zzzzzz#", "unknown_macro").message


def test_wrong_case_gives_the_right_spelling() -> None:
    finding = only("https://t.example/?c=#Fobs:Raw#", "wrong_case")
    assert finding.message == "Macro names are lower case: write #fobs:Raw#, not #Fobs:Raw#."


def test_unknown_modifier_names_it_and_lists_the_ones_that_fit() -> None:
    message = only("https://t.example/?c=#fobs#&t=#sa:euro#", "unknown_modifier").message
    assert "'euro'" in message and "cents" in message and "iso" not in message


def test_findings_point_at_the_offending_text() -> None:
    template = "https://t.example/?c=#fobs#&t=#et:bogus#&x={aff_sub}"
    spans = {f.code: template[f.start : f.end] for f in lint(template)}
    assert spans == {"unknown_modifier": "#et:bogus#", "foreign_syntax": "{aff_sub}"}


def test_findings_are_sorted_by_position() -> None:
    findings = lint("http://t.example/?x={sub1}&y=#FOBS#&z=#zz#")
    assert [f.start for f in findings] == sorted(f.start for f in findings)


def test_a_too_long_url_is_reported_from_the_limit_on() -> None:
    template = "https://t.example/?c=#fobs#&x=" + "a" * 3000
    finding = only(template, "too_long")
    assert (finding.start, finding.end) == (2048, len(template))


@pytest.mark.parametrize("context", [Context.FORM, Context.JSON, Context.TEXT])
def test_body_contexts_skip_url_rules(context: Context) -> None:
    body = '{"payout": "#ca#"}' if context is Context.JSON else "payout=#ca#&u=http://x"
    assert lint(body, context) == []


@pytest.mark.parametrize("context", [Context.FORM, Context.JSON, Context.TEXT])
def test_body_contexts_still_check_macros_and_pasted_syntax(context: Context) -> None:
    body = '{"a": "#fbos#", "b": "{aff_sub}", "c": #sa:bad#}'
    assert [f.code for f in lint(body, context)] == ["unknown_macro", "foreign_syntax", "unknown_modifier"]


def test_raw_is_not_a_warning_in_text_context() -> None:
    assert lint("Bearer #fobs:raw#", Context.TEXT) == []


@pytest.mark.parametrize(
    "body",
    ['{"amount": #sa#,}', '{"sid": #fobs#x}', '{"a": "#fobs:raw#"'],
)
def test_json_bodies_that_would_not_parse_are_errors(body: str) -> None:
    assert "invalid_json" in [f.code for f in lint(body, Context.JSON)]


def test_json_curly_braces_are_not_taken_for_placeholders() -> None:
    assert lint('{"cid": "#fobs#", "n": {"x": #attempt#}}', Context.JSON) == []
