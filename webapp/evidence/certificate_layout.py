"""The page layout of certificates (fpdf2): fonts, headings, fact lists, tables, footer.

DejaVu Sans is embedded (vendored in static/fonts) because fpdf2's core fonts are Latin-1 only
and identities may be in any script (PITFALLS.md #15).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import TableBordersLayout, WrapMode, XPos, YPos
from fpdf.fonts import FontFace

FONT_DIR = Path(__file__).resolve().parents[2] / "static" / "fonts"
FAMILY = "DejaVu"
INK, MUTED, RULE, SHADE = (33, 37, 41), (95, 99, 104), (200, 204, 208), (240, 242, 244)
# Drawn for a character DejaVu Sans has no glyph for (CJK, for one): fpdf2 would drop it
# silently, turning "山田@例え.jp" into "@.jp"; a visible box says something is there.
MISSING_GLYPH = "\u25a1"


def when(moment: datetime | None) -> str:
    """A timestamp as certificates print it: UTC to the second."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def short_when(moment: datetime | None) -> str:
    """A timestamp for table cells (the headings say UTC)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def at_text(at: str) -> str:
    """An audit entry's ISO `at` shortened to the second."""
    return at[:19].replace("T", " ")


class CertificatePDF(FPDF):
    """A4 pages with the desk's fonts, headings, fact lists, tables and a numbered footer."""

    def __init__(self, footer_text: str):
        super().__init__(format="A4")
        self.footer_text = footer_text
        self.add_font(FAMILY, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FAMILY, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(True, margin=18)
        self.set_author("Deletion Desk")
        self.set_creator("Deletion Desk")
        self.set_lang("en")
        self.add_page()

    def normalize_text(self, text: str) -> str:
        """Text as the current font can draw it: a missing glyph becomes □, never nothing."""
        cmap = self.current_font.cmap if self.current_font else None
        if not cmap or all(ord(char) in cmap for char in text):
            return super().normalize_text(text)
        drawn = "".join(c if ord(c) in cmap or c in "\r\n" else MISSING_GLYPH for c in text)
        return super().normalize_text(drawn)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(FAMILY, "", 7.5)
        self.set_text_color(*MUTED)
        self.cell(0, 5, f"{self.footer_text} · page {self.page_no()} of {{nb}}", align="C")

    def title_block(self, title: str, subtitle: str) -> None:
        self.set_font(FAMILY, "B", 17)
        self.set_text_color(*INK)
        self.multi_cell(0, 8, title, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FAMILY, "", 9.5)
        self.set_text_color(*MUTED)
        self.multi_cell(0, 5, subtitle, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)

    def heading(self, text: str) -> None:
        if self.will_page_break(22):
            self.add_page()
        self.ln(3)
        self.set_font(FAMILY, "B", 11.5)
        self.set_text_color(*INK)
        self.cell(0, 7, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(*RULE)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(2)

    def paragraph(self, text: str, size: float = 9.5, bold: bool = False) -> None:
        self.set_font(FAMILY, "B" if bold else "", size)
        self.set_text_color(*INK)
        self.multi_cell(0, size * 0.5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1.5)

    def facts(self, pairs: Sequence[tuple[str, str]], key_width: float = 50) -> None:
        """Label/value lines; values wrap, long hashes shrink to stay on one line."""
        for key, value in pairs:
            self.set_font(FAMILY, "B", 8.5)
            self.set_text_color(*MUTED)
            self.cell(key_width, 5, key)
            size = 7.5 if len(value) >= 60 and " " not in value else 9
            self.set_font(FAMILY, "", size)
            self.set_text_color(*INK)
            self.multi_cell(0, 5, value or "—", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def grid(self, headings: Sequence[str], rows: Sequence[Sequence[str]], widths) -> None:
        """A ruled table whose header repeats on every page it spans."""
        self.set_font(FAMILY, "", 7.5)
        self.set_text_color(*INK)
        self.set_draw_color(*RULE)
        with self.table(
            col_widths=widths,
            text_align="LEFT",
            line_height=4.2,
            padding=(0.8, 1.2),
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            headings_style=FontFace(emphasis="BOLD", fill_color=SHADE, color=INK),
            wrapmode=WrapMode.WORD,
            width=self.epw,
        ) as table:
            table.row(list(headings))
            for row in rows:
                table.row([str(cell) for cell in row])
        self.ln(2)
