# gallery_check.py: checks of a cull-gallery folder for tests/gallery.test, without a browser.
#   folder DIR        every page is well-formed (strict XML parser: the pages are polyglot
#                     XHTML), names its style sheet and script, links only files that
#                     exist in DIR (no network address, no path out of DIR), and thumbnail
#                     names are safe; prints the problems, exits 1 if any
#   keys DIR PAGE CLS the keys of the figures of class CLS (kept, dropped, any) on PAGE,
#                     one a line, in page order
#   text DIR PAGE     the text of PAGE (what a reader sees), one line
#   shot PNG BARE.png the screenshot PNG is not blank (many colours, much that is not
#                     background) and shows thumbnails: it differs from BARE.png, the same
#                     page with its thumbnail files removed (same layout: images have their
#                     size), over at least 2% of its pixels; prints the figures, exits 1 if not
import os, re, sys
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/1999/xhtml}"


def parse(path):
    return ET.parse(path).getroot()


def folder(d):
    bad = []
    pages = sorted(f for f in os.listdir(d) if f.endswith(".html"))
    if "index.html" not in pages:
        bad.append("no index.html")
    for p in pages:
        try:
            root = parse(os.path.join(d, p))
        except ET.ParseError as e:
            bad.append("%s: not well-formed: %s" % (p, e))
            continue
        links = [(el.tag, a, el.get(a)) for el in root.iter() for a in ("href", "src")
                 if el.get(a) is not None]
        if not any(v == "style.css" for _, _, v in links):
            bad.append("%s: does not link style.css" % p)
        for tag, a, v in links:
            if re.match(r"^[a-z]+:|^//|^/|(^|/)\.\.(/|$)", v):
                bad.append("%s: %s=%r leaves the folder" % (p, a, v))
            elif not os.path.isfile(os.path.join(d, v.split("#")[0])):
                bad.append("%s: %s=%r does not exist" % (p, a, v))
    for t in os.listdir(os.path.join(d, "thumbs")):
        if not re.match(r"^[A-Za-z0-9_-]+\.(png|jpg)$", t):
            bad.append("thumbs/%r: not a safe file name" % t)
    for b in bad:
        print(b)
    sys.exit(1 if bad else 0)


def keys(d, page, cls):
    root = parse(os.path.join(d, page))
    for fig in root.iter(NS + "figure"):
        if cls == "any" or fig.get("class") == cls:
            for span in fig.iter(NS + "span"):
                if span.get("class") == "key":
                    sys.stdout.buffer.write(span.get("title").encode("utf-8", "surrogateescape") + b"\n")
                    break


def text(d, page):
    root = parse(os.path.join(d, page))
    print(" ".join(" ".join(root.itertext()).split()))


def shot(png, bare):
    from PIL import Image, ImageChops
    im = Image.open(png).convert("RGB")
    base = Image.open(bare).convert("RGB")
    n = im.size[0] * im.size[1]
    colours = len(im.getcolors(n))
    bg = im.getpixel((im.size[0] - 1, im.size[1] - 1))
    ink = sum(c for c, p in im.getcolors(n) if p != bg) / n
    diff = ImageChops.difference(im, base).convert("L").point(lambda v: 255 if v > 16 else 0)
    shown = diff.histogram()[255] / n if im.size == base.size else 0
    print("%d colours, %.3f not background, thumbnails on %.3f of it" % (colours, ink, shown))
    sys.exit(0 if colours > 30 and ink > 0.05 and shown > 0.02 else 1)


cmd = sys.argv[1]
if cmd == "folder":
    folder(sys.argv[2])
elif cmd == "keys":
    keys(sys.argv[2], sys.argv[3], sys.argv[4])
elif cmd == "text":
    text(sys.argv[2], sys.argv[3])
elif cmd == "shot":
    shot(sys.argv[2], sys.argv[3])
