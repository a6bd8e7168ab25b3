"""Pictures of ranked lists: each query beside its top gallery matches, as a PNG and an HTML page.

The lists are ranked as the evaluation protocol ranks them (drfm.evaluation.protocol: its cosine
distance, float32, ties by lower gallery index, its same-camera junk rule), so a drawn rank is the
rank the protocol scores.

A match is marked correct (green) or incorrect (red) when both identities are known (pid >= 0),
and left unmarked (grey) otherwise. The HTML page is self-contained: every picture is embedded as
a base64 PNG data URI, so the file can be moved or mailed on its own.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from drfm.data.image_io import load_image
from drfm.errors import DrfmError, OptionError, option
from drfm.evaluation.features_file import FeatureSet
from drfm.evaluation.protocol import cosine_distance, rank_gallery, same_camera_junk
from drfm.utils.io import atomic_path

CORRECT, INCORRECT, UNKNOWN = 1, 0, -1
THUMB_SIZE = (64, 128)          # (width, height) of a picture in the PNG, pixels
HTML_MAX_SIZE = (128, 256)      # larger images are shrunk to fit this before embedding in the HTML
COLOURS = {"query": (52, 101, 164), CORRECT: (46, 160, 67), INCORRECT: (207, 34, 46), UNKNOWN: (160, 160, 160)}


@dataclass
class RankedList:
    """One query and its top k gallery matches, best first.

    `distances` (k,) cosine distances; `marks` (k,) int: CORRECT, INCORRECT or UNKNOWN;
    `note`: a short description of the query (size, resolution, identity).
    """

    query: Path
    matches: list[Path]
    distances: np.ndarray
    marks: np.ndarray
    note: str = ""


def match_marks(query_pid: int, gallery_pids: np.ndarray) -> np.ndarray:
    """CORRECT / INCORRECT per gallery pid against `query_pid`; UNKNOWN where either pid is < 0."""
    marks = np.where(gallery_pids == query_pid, CORRECT, INCORRECT)
    unknown = (gallery_pids < 0) | (query_pid < 0)
    return np.where(unknown, UNKNOWN, marks).astype(np.int64)


def ranked_lists(query_paths: list[Path], gallery_paths: list[Path], distances: np.ndarray, top: int,
                 query_pids: np.ndarray | None = None, gallery_pids: np.ndarray | None = None,
                 notes: list[str] | None = None, exclude: np.ndarray | None = None) -> list[RankedList]:
    """RankedList per query from a (Q, G) distance matrix, ranked by protocol.rank_gallery (skipping
    gallery images where the (Q, G) bool mask `exclude` is True); marks from the pids when both are given."""
    lists = []
    for i, order in enumerate(rank_gallery(distances, top, exclude)):
        if query_pids is None or gallery_pids is None:
            marks = np.full(len(order), UNKNOWN)
        else:
            marks = match_marks(int(query_pids[i]), gallery_pids[order])
        lists.append(RankedList(query=Path(query_paths[i]), matches=[Path(gallery_paths[j]) for j in order],
                                distances=distances[i, order], marks=marks,
                                note="" if notes is None else notes[i]))
    return lists


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _framed(path: Path, colour: tuple[int, int, int], border: int = 3) -> Image.Image:
    """The picture fitted into THUMB_SIZE (aspect kept, centred on white) inside a coloured frame."""
    thumb = ImageOps.contain(load_image(path), THUMB_SIZE, Image.BICUBIC)
    cell = Image.new("RGB", (THUMB_SIZE[0] + 2 * border, THUMB_SIZE[1] + 2 * border), colour)
    inner = Image.new("RGB", THUMB_SIZE, (255, 255, 255))
    inner.paste(thumb, ((THUMB_SIZE[0] - thumb.width) // 2, (THUMB_SIZE[1] - thumb.height) // 2))
    cell.paste(inner, (border, border))
    return cell


def render_png(lists: list[RankedList], out: str | Path, title: str = "") -> Path:
    """One row per query: its picture (blue frame), then its matches framed green (correct),
    red (incorrect) or grey (unknown), each captioned with rank and distance. Written atomically."""
    if not lists:
        raise DrfmError(f"{out}: no ranked list to draw")
    pad, gap, header, caption = 8, 20, 18, 16
    cell_w, cell_h = THUMB_SIZE[0] + 6, THUMB_SIZE[1] + 6
    k = max(len(r.matches) for r in lists)
    top = 28 if title else pad
    row_h = header + cell_h + caption + pad
    width = max(pad + (1 + k) * (cell_w + pad) + gap, 480)
    canvas = Image.new("RGB", (width, top + len(lists) * row_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    text_font, small_font = _font(13), _font(11)
    if title:
        draw.text((pad, 6), title, fill=(0, 0, 0), font=_font(15))
    for row, ranked in enumerate(lists):
        y = top + row * row_h
        draw.text((pad, y), f"{ranked.query.name}  {ranked.note}".strip(), fill=(0, 0, 0), font=text_font)
        y += header
        canvas.paste(_framed(ranked.query, COLOURS["query"]), (pad, y))
        draw.text((pad, y + cell_h + 2), "query", fill=COLOURS["query"], font=small_font)
        for rank, (path, dist, mark) in enumerate(zip(ranked.matches, ranked.distances, ranked.marks), 1):
            x = pad + gap + rank * (cell_w + pad)
            canvas.paste(_framed(path, COLOURS[int(mark)]), (x, y))
            draw.text((x, y + cell_h + 2), f"{rank}: {dist:.3f}", fill=COLOURS[int(mark)], font=small_font)
    out = Path(out)
    with atomic_path(out) as tmp:
        canvas.save(tmp, format="PNG", optimize=True)
    return out


def _data_uri(path: Path) -> str:
    """The image as a base64 PNG data URI, shrunk to fit HTML_MAX_SIZE when larger."""
    image = load_image(path)
    if image.width > HTML_MAX_SIZE[0] or image.height > HTML_MAX_SIZE[1]:
        image = ImageOps.contain(image, HTML_MAX_SIZE, Image.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 4px 0; }
p.sub { margin: 0 0 4px 0; color: #555; font-size: 13px; }
p.legend { margin: 0 0 12px 0; font-size: 12px; }
p.legend span { padding: 0 4px; border: 3px solid; }
section { margin: 0 0 14px 0; }
section h2 { font-size: 13px; font-weight: normal; margin: 0 0 4px 0; }
div.row { display: flex; align-items: flex-start; gap: 6px; }
figure { margin: 0; width: 76px; }
figure img { display: block; width: 64px; height: 128px; object-fit: contain; background: #fff;
             border: 4px solid #a0a0a0; }
figure.query { margin-right: 18px; } figure.query img { border-color: #3465a4; }
figure.correct img { border-color: #2ea043; } figure.incorrect img { border-color: #cf222e; }
figcaption { font-size: 11px; line-height: 1.25; word-break: break-all; }
figure.correct figcaption b { color: #2ea043; } figure.incorrect figcaption b { color: #cf222e; }
"""
_LEGEND = ('<p class="legend"><span style="border-color:#3465a4">query</span> '
           '<span style="border-color:#2ea043">same identity</span> '
           '<span style="border-color:#cf222e">another identity</span> '
           '<span style="border-color:#a0a0a0">identity unknown</span> '
           '&nbsp; under each match: rank · cosine distance, file name</p>')
_MARK_CLASS = {CORRECT: "correct", INCORRECT: "incorrect", UNKNOWN: "unknown"}
_MARK_WORD = {CORRECT: " (correct)", INCORRECT: " (incorrect)", UNKNOWN: ""}


def render_html(lists: list[RankedList], out: str | Path, title: str, subtitle: str = "") -> Path:
    """A self-contained HTML page of the ranked lists (pictures inline as data URIs); atomic."""
    if not lists:
        raise DrfmError(f"{out}: no ranked list to draw")
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{esc(title)}</h1>", f'<p class="sub">{esc(subtitle)}</p>' if subtitle else "", _LEGEND]
    for number, ranked in enumerate(lists, 1):
        parts.append(f"<section><h2>Query {number}: <b>{esc(ranked.query.name)}</b> {esc(ranked.note)}</h2>"
                     '<div class="row">')
        parts.append(f'<figure class="query"><img src="{_data_uri(ranked.query)}" alt="query {esc(ranked.query.name)}">'
                     f"<figcaption>query</figcaption></figure>")
        for rank, (path, dist, mark) in enumerate(zip(ranked.matches, ranked.distances, ranked.marks), 1):
            mark = int(mark)
            parts.append(f'<figure class="{_MARK_CLASS[mark]}"><img src="{_data_uri(path)}" '
                         f'alt="rank {rank}{_MARK_WORD[mark]}" title="{esc(str(path))}">'
                         f"<figcaption><b>{rank}</b> · {dist:.3f}<br>{esc(path.name)}</figcaption></figure>")
        parts.append("</div></section>")
    parts.append("</body></html>")
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(p for p in parts if p) + "\n", encoding="utf-8")
    return out


def write_pictures(lists: list[RankedList], html_path: str | Path, title: str,
                   subtitle: str = "") -> tuple[Path, Path]:
    """Write the HTML page at `html_path` and the PNG beside it (same name, .png); returns both."""
    html_path = Path(html_path)
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise DrfmError(f"{html_path}: the results page must be an .html file")
    png_path = html_path.with_suffix(".png")
    return render_html(lists, html_path, title, subtitle), render_png(lists, png_path, title)


def visualize_features(features: FeatureSet, num_queries: int, html_path: str | Path, top: int = 10, seed: int = 0,
                       protocol: str = "single-shot", title: str = "") -> tuple[Path, Path]:
    """Pictures of the ranked lists of `num_queries` queries of a FeatureSet (drawn with numpy
    default_rng(seed), shown in query order) against its whole gallery, by the protocol's cosine
    distances (computed for all queries, as `evaluate_features` does, then the drawn rows kept) and
    ranking; multi-shot skips the protocol's junk (same identity, same known camera). Needs the
    file paths."""
    if features.query_paths is None or features.gallery_paths is None:
        raise OptionError(f"{option('num_queries')} needs image paths (query_paths, gallery_paths) in the "
                          "features file")
    if num_queries < 1:
        raise OptionError(f"{option('num_queries')} must be at least 1, got {num_queries}")
    num_all = len(features.query_feats)
    chosen = np.sort(np.random.default_rng(seed).choice(num_all, min(num_queries, num_all), replace=False))
    qpids, qcams = features.query_pids[chosen], features.query_camids[chosen]
    exclude = None
    if protocol == "multi-shot":
        exclude = same_camera_junk(qpids[:, None], qcams[:, None], features.gallery_pids, features.gallery_camids)
    distances = cosine_distance(features.query_feats, features.gallery_feats)[chosen]
    notes = [f"id {p}, camera {c}" for p, c in zip(qpids, qcams)]
    lists = ranked_lists([Path(str(p)) for p in features.query_paths[chosen]],
                         [Path(str(p)) for p in features.gallery_paths], distances, top,
                         qpids, features.gallery_pids, notes, exclude)
    subtitle = (f"{len(chosen)} of {num_all} queries (seed {seed}) against the whole gallery of "
                f"{len(features.gallery_feats)} images, {protocol} protocol")
    return write_pictures(lists, html_path, title or "drfm evaluate: ranked lists", subtitle)
