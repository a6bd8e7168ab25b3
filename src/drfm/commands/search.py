"""`drfm search`: rank a gallery folder for query images with a trained model; pictures of the lists."""

from __future__ import annotations

import argparse
from pathlib import Path

from drfm.api import RESOLUTIONS
from drfm.cli import positive_int
from drfm.errors import DrfmError
from drfm.utils.io import check_output_file

HELP = "search a gallery folder for the people in query images; print and draw the ranked matches"

DESCRIPTION = """\
Embed the queries and every image under --gallery (recursively) with the trained model, rank the
gallery by cosine distance (ties: file order) and print each query's top matches.

The gallery's features are cached in an index file (default under ~/.cache/drfm/search/, or
--index): files whose path, size and modification time are unchanged are not embedded again.
--out results.html writes a self-contained HTML page and results.png: each query beside its top
matches, framed green (correct) or red (incorrect) when identities are known from the file names
(MLR manifest, PRID/CAVIAR names, or a leading `PPPP_` person number on every file).

Resolution: "auto" treats an image lower than the run's data.lr_height_threshold pixels as
low-resolution (features CRFF(E_h(SR(x)), E_l(x))), others as high-resolution
(CRFF(E_h(x), E_l(DS(x)))); "low"/"high" force one.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `drfm search`."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, metavar="RUN_DIR", help="run folder or checkpoint file")
    parser.add_argument("--query", required=True, nargs="+", metavar="IMG", help="query image file(s)")
    parser.add_argument("--gallery", required=True, metavar="DIR", help="folder of gallery images")
    parser.add_argument("--top", type=positive_int, default=10, help="matches shown per query (default: 10)")
    parser.add_argument("--out", metavar="RESULTS.html",
                        help="write the ranked lists as this HTML page and as a PNG beside it")
    parser.add_argument("--index", metavar="FILE.npz", help="gallery index file (default: in the user cache)")
    parser.add_argument("--query-resolution", choices=RESOLUTIONS, default="auto",
                        help="how queries are embedded (default: auto)")
    parser.add_argument("--gallery-resolution", choices=RESOLUTIONS, default="auto",
                        help="how gallery images are embedded (default: auto)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    parser.add_argument("--batch-size", type=positive_int, help="images per forward pass (default: the run's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Search, print every query's ranked matches, and write --out (HTML and PNG)."""
    from drfm.api import ReIDModel
    from drfm.evaluation.visualize import CORRECT, INCORRECT, write_pictures
    from drfm.search import search

    if args.out:
        if Path(args.out).suffix.lower() not in (".html", ".htm"):
            raise DrfmError(f"--out {args.out}: the results page must be an .html file")
        check_output_file(args.out, "--out")
        check_output_file(Path(args.out).with_suffix(".png"), "--out")
    if args.index:
        check_output_file(args.index, "--index")
    model = ReIDModel.from_run(args.model, device=args.device)
    result = search(model, args.query, args.gallery, args.index, args.query_resolution,
                    args.gallery_resolution, args.batch_size, progress=not args.quiet)
    index = result.index
    print(f"gallery {args.gallery}: {len(index.paths)} images ({index.embedded} embedded, "
          f"{index.reused} from the index {index.file})")
    lists = result.ranked(args.top)
    words = {CORRECT: "correct", INCORRECT: "incorrect"}
    gallery = Path(args.gallery)
    for number, ranked in enumerate(lists, 1):
        print(f"query {number}: {ranked.query} ({ranked.note})")
        for rank, (path, dist, mark) in enumerate(zip(ranked.matches, ranked.distances, ranked.marks), 1):
            print(f"  {rank:3d}  {dist:.4f}  {path.relative_to(gallery)}  {words.get(int(mark), '')}".rstrip())
    if args.out:
        title = f"drfm search: top {args.top} of {len(index.paths)} gallery images"
        subtitle = f"model {model.checkpoint}; gallery {Path(args.gallery).resolve()}"
        html_path, png_path = write_pictures(lists, args.out, title, subtitle)
        print(f"wrote {html_path} and {png_path}")
    return 0
