"""The tool policy page's form: an environment's operations, four-eyes, limits and texts.

The fields are made from webapp.tool_policy.OPERATIONS (a switch and a description each), so a
new operation appears here by itself. `changes()` turns the form into the change the service
takes; the service checks it again and says what is wrong in the same plain words.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from webapp import tool_policy
from webapp.tool_policy import DEFAULT_DESCRIPTIONS, LABELS, MAX_ITEMS_LIMIT, OPERATIONS, Policy

FOUR_EYES_CHOICES = [
    SelectChoice("off", "Off: no correction waits for a second officer"),
    SelectChoice("every", "Every correction waits for a second officer"),
    SelectChoice("above", "Corrections of more than this many items:"),
]


def _whole(text: str | None, what: str, low: int) -> int:
    """A whole number typed in a box, or ValidationError naming the range."""
    text = (text or "").strip().replace(",", "")
    if not (text.isascii() and text.isdigit() and len(text) <= 6) or not (
        low <= int(text) <= MAX_ITEMS_LIMIT
    ):
        raise ValidationError(f"{what} must be a whole number from {low:,} to {MAX_ITEMS_LIMIT:,}.")
    return int(text)


def _lines(text: str | None) -> list[str]:
    """Non-blank lines, trimmed (browsers send CRLF)."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class PolicyForm(FlaskForm):
    """Operations as `op_<name>` switches, descriptions as `text_<name>` (added below)."""

    four_eyes = RadioField("Four-eyes for corrections", choices=FOUR_EYES_CHOICES, default="off")
    four_eyes_above = StringField(
        "Number of items",
        description="A correction with more items than this waits for a second officer's approval.",
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    max_items = StringField(
        "Most items in one correction",
        description=f"1 to {MAX_ITEMS_LIMIT:,}. A larger correction is refused: split it.",
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    forbidden_keys = TextAreaField(
        "Forbidden property keys",
        description="One per line. Nobody may write these properties, in any letter case. "
        "Patterns: * stands for any characters, ? for one (e.g. ssn_* or *password*).",
        render_kw={"rows": 5, "spellcheck": "false", "autocomplete": "off"},
    )
    submit = SubmitField("Save the policy")

    def validate_four_eyes_above(self, field: StringField) -> None:
        if self.four_eyes.data == "above":
            _whole(field.data, "The number of items for four-eyes", 1)

    def validate_max_items(self, field: StringField) -> None:
        _whole(field.data, "The most items in one correction", 1)

    def validate_forbidden_keys(self, field: TextAreaField) -> None:
        keys = _lines(field.data)
        if len(keys) > tool_policy.MAX_FORBIDDEN_KEYS:
            raise ValidationError(f"At most {tool_policy.MAX_FORBIDDEN_KEYS} keys, one per line.")
        too_long = [n for n, key in enumerate(keys, 1) if len(key) > tool_policy.MAX_KEY_LENGTH]
        if too_long:
            raise ValidationError(
                f"Key {too_long[0]} is over {tool_policy.MAX_KEY_LENGTH} characters."
            )

    def fill(self, policy: Policy) -> None:
        """Show `policy` (on GET): a description equal to the desk's own is left empty."""
        above = policy.corrections_four_eyes_above
        self.four_eyes.data = "off" if above is None else "every" if above == 0 else "above"
        self.four_eyes_above.data = str(above) if above else ""
        self.max_items.data = str(policy.max_items)
        self.forbidden_keys.data = "\n".join(policy.forbidden_property_keys)
        for op in OPERATIONS:
            getattr(self, f"op_{op}").data = policy.allows(op)
            text = policy.description(op)
            getattr(self, f"text_{op}").data = "" if text == DEFAULT_DESCRIPTIONS[op] else text

    def changes(self) -> dict[str, Any]:
        """The whole policy as the form states it, in the shape update_policy takes."""
        mode = self.four_eyes.data
        above = None if mode == "off" else 0 if mode == "every" else int(self.four_eyes_above.data)
        return {
            "operations": {op: bool(getattr(self, f"op_{op}").data) for op in OPERATIONS},
            "corrections_four_eyes_above": above,
            "max_items": int(self.max_items.data.strip().replace(",", "")),
            "forbidden_property_keys": _lines(self.forbidden_keys.data),
            # Textareas send CRLF; the policy keeps plain line feeds.
            "descriptions": {
                op: (getattr(self, f"text_{op}").data or "").replace("\r\n", "\n").strip()
                for op in OPERATIONS
            },
        }

    def switches(self) -> list[BooleanField]:
        return [getattr(self, f"op_{op}") for op in OPERATIONS]

    def texts(self) -> list[tuple[str, TextAreaField]]:
        return [(op, getattr(self, f"text_{op}")) for op in OPERATIONS]


for _op in OPERATIONS:
    setattr(PolicyForm, f"op_{_op}", BooleanField(LABELS[_op]))
    setattr(
        PolicyForm,
        f"text_{_op}",
        TextAreaField(
            LABELS[_op],
            description="Empty: the desk's own text.",
            render_kw={
                "rows": 3,
                "maxlength": tool_policy.MAX_DESCRIPTION_LENGTH,
                "placeholder": DEFAULT_DESCRIPTIONS[_op],
            },
        ),
    )
