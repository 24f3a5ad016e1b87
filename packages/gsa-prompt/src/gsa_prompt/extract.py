r"""Final-answer extraction and answer equivalence (pure standard library).

Self-consistency (SC, Wang et al. 2023) votes over the *extracted* answers ``a(y_i)`` of the sampled
responses and returns the first response whose answer is the mode; the evaluation harness scores every
method's text with the same ``a(·)``. Sources of the conventions:

- :func:`extract_gsm8k`: GSM8K (Cobbe et al. 2021) gold solutions end with ``#### 72``.
- :func:`extract_boxed`, :func:`extract_math`: MATH (Hendrycks et al. 2021) puts the answer in the last
  ``\boxed{...}``; Minerva's prompts end with "Final Answer: The final answer is X".
- :func:`extract_choice`: MMLU / GPQA letters, the last explicit "Answer: X" (spec pitfall 11).
- :func:`normalize_answer`: in the spirit of Hendrycks' ``_strip_string`` (rewritten, not copied).

Conventions that are ours (no source fixes them):

- Aggregated GSA texts restate each candidate's answer (spec pitfall 6), so explicit markers beat
  "the last number": :func:`extract_gsm8k` takes the last ``####`` line if any, else the *last by
  position* of the answer phrases and ``\boxed{}``, and only then the last number in the text.
- ``"50%"`` equals ``"50"`` (the percent sign is decoration, as in GSM8K and MATH gold answers), not 0.5.
- Two numbers are equal exactly when both are written as integers or fractions; when either is
  written with a decimal point, within a relative tolerance (so ``"0.3333333"`` can match ``1/3``).
- Non-numeric answers compare as normalised strings, case-sensitively (``x`` and ``X`` differ in math).
- ``None`` (no extractable answer) equals nothing (and never wins a vote, :mod:`gsa_prompt.vote`).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from fractions import Fraction

__all__ = [
    "extract_boxed",
    "extract_choice",
    "extract_gsm8k",
    "extract_math",
    "math_equal",
    "normalize_answer",
    "to_number",
]

_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-−+])?(?:\\?\$\s?)?(?P<sign2>[-−])?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?!\d)"
)
"""A number as written in prose: sign, optional ``$``, thousands commas, decimals (a trailing period is not kept)."""

_HASHES = re.compile(r"####(?P<rest>[ \t]*(?:\*\*)?[ \t]*[-+]?[ \t]*(?:\\?\$)?[ \t]*-?\.?\d[^\n]*)")
"""GSM8K's ``#### 72`` marker: the rest of the line must start with the number (``$`` and ``**`` allowed), so a
markdown heading such as ``#### Step 2: add 4`` is not taken for the answer."""
_PHRASE = re.compile(r"\banswer(?:\s*\*\*)?\s*(?:is\b|:)\s*:?", re.IGNORECASE)
""""The answer is", "Final answer:", "**Answer:**" ...: the answer follows it on the same line."""

_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_CHOICE_MARKER = re.compile(
    r"(?:\banswer\b|\b(?:correct|right|best|final)\s+(?:option|choice)\b)(?:\s*\*\*)?"
    r"(?:\s+(?:is|would\s+be|should\s+be|must\s+be)\b)?(?:\s+therefore)?\s*[:：]?(?:\s*\*\*)?\s*"
    r"(?:(?:option|choice)\s+)?(?:\$?\\boxed\{)?(?:\\text\{)?"
    r"(?P<open>[(\[]|\*\*)?\s*(?P<letter>[A-Za-z])\s*(?P<close>[)\]]|\*\*)?",
    re.IGNORECASE,
)
_FINAL_TOKEN = re.compile(r"(?:\((?P<p>[A-Za-z])\)|\[(?P<b>[A-Za-z])\]|(?:^|\n)[ \t*]*(?P<bare>[A-Z]))[ \t]*\Z")
_WRAPPER = r"\\(?:text|textbf|textrm|mbox|mathrm)\{([^{}]*)\}"
_DECIMAL = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"


# -- validation and LaTeX helpers ------------------------------------------------------------------
def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def _match_brace(s: str, i: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``s[i]`` (escaped ``\\{``/``\\}`` do not count), else None."""
    depth, j = 0, i
    while j < len(s):
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return None


def _iter_boxed(text: str) -> list[tuple[int, str | None]]:
    """``(start, content)`` of each top-level ``\\boxed``/``\\fbox`` in order; content None when unbalanced."""
    out: list[tuple[int, str | None]] = []
    pos = 0
    while (m := _BOX.search(text, pos)) is not None:
        j = m.end()
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == "{":
            close = _match_brace(text, j)
            if close is None:  # unbalanced: it swallows the rest of the text
                out.append((m.start(), None))
                break
            out.append((m.start(), text[j + 1 : close]))
            pos = close + 1
        else:  # "\boxed 5" (MATH's unbraced form): up to whitespace or "$"
            token = re.match(r"[^\s$]+", text[j:]) if j > m.end() else None
            out.append((m.start(), token.group() if token else None))
            pos = j + (token.end() if token else 0)
    return out


def _latex_arg(s: str, i: int) -> tuple[str, int] | None:
    """The argument of a macro starting at ``s[i]``: a braced group, a control word or one character."""
    if i >= len(s) or s[i] == "}":
        return None
    if s[i] == "{":
        close = _match_brace(s, i)
        return None if close is None else (s[i + 1 : close], close + 1)
    if s[i] == "\\":
        m = re.match(r"\\[A-Za-z]+|\\.", s[i:])
        return (m.group(), i + m.end()) if m else None
    return s[i], i + 1


def _brace_args(s: str, macro: str, nargs: int) -> str:
    r"""Give every argument of ``macro`` braces: ``\frac12`` -> ``\frac{1}{2}``, ``\sqrt2`` -> ``\sqrt{2}``."""
    out, i = [], 0
    while (k := s.find(macro, i)) >= 0:
        j = k + len(macro)
        if j < len(s) and s[j].isalpha():  # a longer control word such as \fracx
            out.append(s[i:j])
            i = j
            continue
        out.append(s[i:j])
        if s.startswith("[", j) and (close := s.find("]", j)) > 0:  # \sqrt[3]{x}: keep the optional argument
            out.append(s[j : close + 1])
            j = close + 1
        for _ in range(nargs):
            arg = _latex_arg(s, j)
            if arg is None:
                break
            out.append("{" + _brace_args(arg[0], macro, nargs) + "}")
            j = arg[1]
        i = j
    out.append(s[i:])
    return "".join(out)


_FRACTION = re.compile(
    r"(?<![\w.])(?P<sign>-)?(?P<a>\d+)\s*/\s*(?P<b>\d+)(?![\d/.])|"
    r"(?P<lsign>-)?\\[dt]?frac\{(?P<la>-?\d+)\}\{(?P<lb>\d+)\}"
)
"""A simple fraction as written in prose (``3/4``, ``-3/4``) or LaTeX (``\\frac{3}{4}``)."""


def _first_answer(segment: str) -> str | None:
    """The first number or simple fraction in ``segment`` (a fraction wins when it starts no later)."""
    number = _NUMBER.search(segment)
    fraction = _FRACTION.search(segment)
    if fraction is not None and (number is None or fraction.start() <= number.start()):
        if fraction.group("a") is not None:
            return f"{'-' if fraction.group('sign') else ''}{fraction.group('a')}/{fraction.group('b')}"
        neg = fraction.group("lsign") is not None
        return f"{'-' if neg else ''}{fraction.group('la')}/{fraction.group('lb')}"
    return _number_token(number) if number is not None else None


def _number_token(m: re.Match[str]) -> str:
    sign = m.group("sign")
    neg = (sign is not None and sign in "-−") or m.group("sign2") is not None
    num = m.group("num").replace(",", "")
    return ("-" if neg else "") + ("0" + num if num.startswith(".") else num)


# -- extraction ------------------------------------------------------------------------------------
def extract_boxed(text: str) -> str | None:
    r"""Content of the last top-level ``\boxed{...}`` (or ``\fbox{...}``), brace-matched.

    Args:
        text: a response, typically ending with ``\boxed{answer}``.

    Returns:
        The stripped content of the last box (nested braces kept, so ``\boxed{\frac{1}{2}}`` gives
        ``\frac{1}{2}``); MATH's unbraced ``\boxed 5`` gives ``5``. None when there is no box, the
        last one is unbalanced, or it is empty.

    Raises:
        TypeError: if ``text`` is not a str.

    Example:
        >>> extract_boxed(r"First \boxed{1}, then $\boxed{\frac{1}{2}}$.")
        '\\frac{1}{2}'
        >>> extract_boxed(r"\boxed{3") is None
        True
    """
    boxes = _iter_boxed(_check_str("text", text))
    content = boxes[-1][1] if boxes else None
    return (content.strip() or None) if content is not None else None


def extract_gsm8k(text: str) -> str | None:
    r"""The final number of a GSM8K-style response.

    Order: (1) the number on the last ``####`` line (the dataset's gold-answer marker); (2) the last
    explicit marker by position, among ``\boxed{...}`` and "The answer is 72" / "Final answer: 72" /
    "**Answer:** 72" phrases (from the rest of that sentence: the number after its last ``=``, else
    its first number or simple fraction, ``3/4`` or ``\frac{3}{4}``); (3) the last number in the text. Markers win over "the last number" because
    aggregated texts restate the candidates' answers (spec pitfall 6).

    Args:
        text: a response.

    Returns:
        The number as written, without thousands commas, ``$``, ``%`` or a trailing period
        (``"-1,234.50%."`` -> ``"-1234.50"``); from a box whose content is number-like but not a
        plain number (``\frac{1}{2}``), the normalised content. None when the text holds no number.

    Raises:
        TypeError: if ``text`` is not a str.

    Example:
        >>> extract_gsm8k("Response 1 gets 70, response 2 gets 72.\nThe answer is $1,072.")
        '1072'
        >>> extract_gsm8k("3 + 4 = 7\n#### 7")
        '7'
        >>> extract_gsm8k("#### Step 2: add 4 pencils\n6 + 4 = 10\nThe answer is \\boxed{10}.")
        '10'
    """
    text = _check_str("text", text).replace("−", "-")
    for h in reversed(list(_HASHES.finditer(text))):
        if (found := _first_answer(h.group("rest"))) is not None:
            return found
    markers: list[tuple[int, str]] = []
    for p in _PHRASE.finditer(text):
        window = re.split(r"\n|\.(?:\s|$)", text[p.end() :], maxsplit=1)[0]  # the rest of the sentence
        if _BOX.match(window.lstrip(" *$")):
            continue  # the box itself is a marker below
        if (found := _first_answer(window.rpartition("=")[2]) or _first_answer(window)) is not None:
            markers.append((p.start(), found))
    for start, content in _iter_boxed(text):
        if content is not None and (found := _boxed_number(content)) is not None:
            markers.append((start, found))
    if markers:
        return max(markers)[1]
    numbers = list(_NUMBER.finditer(text))
    return _number_token(numbers[-1]) if numbers else None


def _boxed_number(content: str) -> str | None:
    plain = _NUMBER.fullmatch(content.strip().rstrip(".").replace("\\%", "").rstrip("%").strip())
    if plain is not None:
        return _number_token(plain)
    if _parse(content) is not None:
        return _normalize(content)
    numbers = list(_NUMBER.finditer(content))
    return _number_token(numbers[-1]) if numbers else None


def extract_math(text: str) -> str | None:
    r"""The final answer of a MATH-style response: the last ``\boxed{}``, else "The answer is ...".

    Args:
        text: a response.

    Returns:
        The box content (see :func:`extract_boxed`); else the rest of the line after the last answer
        phrase, cut at a sentence end (``". "``), with surrounding ``$`` and ``**`` and a trailing
        period removed (Minerva's "Final Answer: The final answer is $X$. I hope it is correct."
        gives ``X``). Not normalised: compare with :func:`math_equal`. None when neither is found.

    Raises:
        TypeError: if ``text`` is not a str.

    Example:
        >>> extract_math(r"So $x = \boxed{\dfrac{3}{4}}$.")
        '\\dfrac{3}{4}'
        >>> extract_math("The final answer is $\\sqrt{2}$. I hope it is correct.")
        '\\sqrt{2}'
    """
    if (boxed := extract_boxed(text)) is not None:
        return boxed
    for p in reversed(list(_PHRASE.finditer(text))):
        window = text[p.end() :].split("\n", 1)[0].strip(" \t*")
        math_mode = re.match(r"\$+([^$]*)", window)  # "$X$. I hope it is correct." -> X
        window = math_mode.group(1) if math_mode else re.split(r"\.(?:\s|$)", window, maxsplit=1)[0]
        if window := window.strip(" \t*").rstrip(".").strip():
            return window
    return None


def extract_choice(text: str, options: str | Sequence[str] = "ABCD") -> str | None:
    r"""The letter of a multiple-choice response (MMLU / GPQA style): the last explicit one.

    Explicit forms, case-insensitive markers: "Answer: C", "The answer is (c)", "The correct option
    is **B**", ``\boxed{C}`` / ``\boxed{\text{(C)}}``, and a letter in brackets or alone on the last
    line as the text's final token. A bare letter must be upper-case and stand alone ("Answer: A
    careful look ..." is no answer); the first capital letter in the text is never taken (spec pitfall 11).

    Args:
        text: a response.
        options: the allowed letters, e.g. ``"ABCD"`` (MMLU) or ``"ABCDEFGHIJ"`` (MMLU-Pro); any case.

    Returns:
        The upper-case letter of the last explicit form whose letter is in ``options``; None if none.

    Raises:
        TypeError: if ``text`` is not a str.
        ValueError: if ``options`` is empty or holds something other than single ASCII letters.

    Example:
        >>> extract_choice("Answer: A seems plausible, but (B) fits better.\nThe answer is (b).")
        'B'
        >>> extract_choice("Vitamin C deficiency causes scurvy.") is None
        True
    """
    _check_str("text", text)
    if not isinstance(options, Sequence):
        raise TypeError(f"options must be a str or a sequence of letters, got {type(options).__name__}")
    letters = list(options)
    if not letters or not all(isinstance(c, str) and len(c) == 1 and c.isascii() and c.isalpha() for c in letters):
        raise ValueError(f"options must be a non-empty string of ASCII letters such as 'ABCD', got {options!r}")
    allowed = {c.upper() for c in letters}
    found: list[tuple[int, str]] = []
    for m in _CHOICE_MARKER.finditer(text):
        letter, bracketed = m.group("letter"), bool(m.group("open") or m.group("close"))
        rest = text[m.end("letter") :]
        if not bracketed and (
            not letter.isupper() or re.match(r"[\w'’]", rest) or (letter in "AI" and re.match(r"\s+[a-z]", rest))
        ):
            continue  # "Answer: A careful ...", "answer is Clearly"
        found.append((m.start("letter"), letter.upper()))
    for start, content in _iter_boxed(text):
        if content is not None and (box := re.fullmatch(r"[(\[]?([A-Za-z])[)\]]?(?:[.:].*)?", _normalize(content))):
            found.append((start, box.group(1).upper()))
    if (last := _FINAL_TOKEN.search(text.rstrip().rstrip(".*$").rstrip())) is not None:
        letter = last.group("p") or last.group("b") or last.group("bare")
        found.append((len(text), letter.upper()))
    valid = [(pos, letter) for pos, letter in found if letter in allowed]
    return max(valid)[1] if valid else None


# -- normalisation and equivalence -----------------------------------------------------------------
def normalize_answer(ans: str) -> str:
    r"""Canonical string form of an answer, for string comparison.

    Removes whitespace, ``$``, ``\left``/``\right``, LaTeX spacing (``\!``, ``\,``, ``\;``, ``\:``),
    ``\displaystyle``, degree marks (``^\circ``, ``°``), percent signs, trailing periods, a trailing
    ``\text{...}`` unit after a number, an outer ``\boxed{}`` and a leading ``x =`` / ``\theta =``
    assignment; unwraps other ``\text{...}``; turns ``\dfrac``/``\tfrac`` into ``\frac`` and braces
    ``\frac12`` -> ``\frac{1}{2}``, ``\sqrt2`` -> ``\sqrt{2}``; for a plain number, drops thousands
    commas, a leading ``+`` and trailing decimal zeros and adds a leading ``0`` (``.5`` -> ``0.5``).

    Args:
        ans: an extracted answer.

    Returns:
        The normalised string (idempotent: normalising it again changes nothing).

    Raises:
        TypeError: if ``ans`` is not a str.

    Example:
        >>> normalize_answer(r"$x = \dfrac12$.")
        '\\frac{1}{2}'
        >>> normalize_answer("1,000.50"), normalize_answer(r"10^{\circ}"), normalize_answer(r"5\text{ cm}")
        ('1000.5', '10', '5')
    """
    return _normalize(_check_str("ans", ans))


@functools.lru_cache(maxsize=8192)
def _normalize(s: str) -> str:
    """Apply :func:`_normalize_once` to a fixed point (a removal can create a new token: ``\\\\right,``)."""
    for _ in range(8):
        s, previous = _normalize_once(s), s
        if s == previous:
            break
    return s


def _normalize_once(s: str) -> str:
    s = s.strip().replace("−", "-")
    s = re.sub(r"\\(?:left|right)(?![A-Za-z])|\\displaystyle|\\[!,;:]|\\\s", "", s)
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|°|\\degree|\\%|%|\\\$|\$", "", s)
    s = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", s).replace("{,}", ",")
    s = re.sub(r"\s+", "", s).rstrip(".")
    if (box := re.fullmatch(r"\\boxed(\{.*\})", s)) and _match_brace(box.group(1), 0) == len(box.group(1)) - 1:
        s = box.group(1)[1:-1]
    while (unit := re.search(_WRAPPER + r"(?:\^\{?[23]\}?)?$", s)) and re.search(r"\d", s[: unit.start()]):
        s = s[: unit.start()]  # a trailing unit after a number, such as "5\text{cm}^2"
    while (unwrapped := re.sub(_WRAPPER, r"\1", s)) != s:
        s = unwrapped
    s = _brace_args(_brace_args(s, "\\frac", 2), "\\sqrt", 1).rstrip(".")
    assign = re.fullmatch(r"(\\?[A-Za-z]+(?:_\{?[A-Za-z0-9]+\}?)?)=([^=]+)", s)
    if assign is not None and len(assign.group(1)) <= 8:
        s = assign.group(2)
    if re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    if re.fullmatch(_DECIMAL, s):
        s = s.lstrip("+")
        s = re.sub(r"^(-?)\.", r"\g<1>0.", s)
        if "." in s:
            s = s.rstrip("0").rstrip(".")
    return s


def to_number(ans: str) -> Fraction | None:
    r"""The exact value of a number-like answer, else None.

    Accepts integers, decimals, ``a/b``, ``\frac{a}{b}`` (also ``\dfrac``, ``\frac12``), negatives,
    percentages and mixed numbers (``1 1/2``, ``2\frac{1}{4}``), after :func:`normalize_answer`.
    A percent sign is dropped, not applied: ``"50%"`` is 50 (GSM8K and MATH write percentage answers
    as the bare number), so ``"50%"`` equals ``"50"`` and not ``"0.5"``.

    Args:
        ans: an extracted answer.

    Returns:
        A :class:`~fractions.Fraction` (decimals are converted exactly: ``"0.1"`` is 1/10), or None
        for anything else, including a zero denominator.

    Raises:
        TypeError: if ``ans`` is not a str.

    Example:
        >>> to_number(r"-\dfrac{3}{4}"), to_number("1,250.5"), to_number("50%")
        (Fraction(-3, 4), Fraction(2501, 2), Fraction(50, 1))
    """
    parsed = _parse(_check_str("ans", ans))
    return None if parsed is None else parsed[0]


@functools.lru_cache(maxsize=8192)
def _parse(ans: str) -> tuple[Fraction, bool] | None:
    """``(value, exact)``: exact is False when a part is written with a decimal point."""
    mixed = re.sub(r"^\s*([-+]?\d+)\s+(\d+)\s*/\s*(\d+)\s*$", r"\1\\frac{\2}{\3}", ans.replace("−", "-"))
    s, exact = _normalize(mixed), re.search(r"\.\d", ans) is None
    if re.fullmatch(_DECIMAL, s):
        return Fraction(s), exact
    m = re.fullmatch(rf"({_DECIMAL})/({_DECIMAL})", s) or re.fullmatch(
        rf"([-+]?\d*)\\frac\{{({_DECIMAL})\}}\{{({_DECIMAL})\}}", s
    )
    if m is None:
        return None
    *head, num, den = m.groups()
    if Fraction(den) == 0:
        return None
    whole = head[0] if head else ""  # "-2" in the mixed number -2\frac{1}{4}: the sign applies to the whole
    value = Fraction(whole.lstrip("+-") or 0) + Fraction(num) / Fraction(den)
    return (-value if whole.startswith("-") else value), exact


def math_equal(a: str | None, b: str | None, *, rel_tol: float = 1e-6) -> bool:
    r"""Whether two extracted answers are the same answer.

    Numbers (:func:`to_number`) compare exactly when both are written as integers or fractions and
    within ``|a - b| <= rel_tol * max(|a|, |b|)`` when either is written with a decimal point; tuples
    and intervals with the same brackets compare element-wise (``"(1, 2)"`` == ``"(1,2.0)"``); all
    else compares as :func:`normalize_answer` strings. None equals nothing, not even None.

    Args:
        a: an answer or None.
        b: an answer or None.
        rel_tol: relative tolerance for decimals, ``> 0`` (default 1e-6).

    Returns:
        True when equal.

    Raises:
        TypeError: if ``a`` or ``b`` is neither a str nor None.
        ValueError: if ``rel_tol`` is not a finite number > 0.

    Example:
        >>> math_equal(r"\frac{1}{2}", "0.5"), math_equal("1,000", "1000"), math_equal("x = 3", "3")
        (True, True, True)
        >>> math_equal("1000000", "1000001"), math_equal(None, None)
        (False, False)
    """
    if isinstance(rel_tol, bool) or not isinstance(rel_tol, (int, float)) or not math.isfinite(rel_tol) or rel_tol <= 0:
        raise ValueError(f"rel_tol must be a finite number > 0, got {rel_tol!r}")
    for name, value in (("a", a), ("b", b)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str or None, got {type(value).__name__}")
    if a is None or b is None:
        return False
    return _equal(a, b, Fraction(rel_tol))


def _equal(a: str, b: str, tol: Fraction) -> bool:
    pa, pb = _parse(a), _parse(b)
    if pa is not None and pb is not None:
        (x, exact_x), (y, exact_y) = pa, pb
        return x == y or (not (exact_x and exact_y) and abs(x - y) <= tol * max(abs(x), abs(y)))
    sa, sb = _normalize(a), _normalize(b)
    if sa == sb:
        return True
    ta, tb = _split_tuple(sa), _split_tuple(sb)
    if ta is None or tb is None or ta[0] != tb[0] or len(ta[1]) != len(tb[1]):
        return False
    return all(_equal(u, v, tol) for u, v in zip(ta[1], tb[1], strict=True))


def _split_tuple(s: str) -> tuple[str, list[str]] | None:
    """``(brackets, items)`` of ``"(1,2]"`` -> ``("(]", ["1", "2"])`` split at top-level commas, else None."""
    if len(s) < 2 or s[0] not in "([" or s[-1] not in ")]":
        return None
    items, depth, start = [], 0, 1
    for i, c in enumerate(s[1:-1], start=1):
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(s[start:i])
            start = i + 1
    items.append(s[start:-1])
    return (s[0] + s[-1], items) if len(items) >= 2 else None
