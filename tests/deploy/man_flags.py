#!/usr/bin/python3
"""--help and the man page agree: the same flags, the same commands.

    man_flags.py PROGRAM PAGE.scd

From PROGRAM --help: the terms of its option and command lists, i.e. the
part before the description on lines indented by 1 to 4 spaces
("  --port N   TCP port" gives --port; "  ping [-c N]   send" gives the
command ping and its flag -c). From the scdoc source: the term lines of its
definition lists, i.e. lines that start in bold and are followed by a
tab-indented description ("*--port* _N_", "*ping* [*-c* _N_]"). Every flag and command on one side must be on the
other, so a flag added to a program (or to a page) without the other fails
here. Nothing here knows the programs' flags.
"""
import re
import subprocess
import sys

FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
COMMAND = re.compile(r"[a-z][a-z0-9-]*")


def help_terms(text):
    """(flags, commands) named in the terms of --help's lists."""
    flags, commands = set(), set()
    for line in text.splitlines():
        m = re.match(r"^ {1,4}(\S.*)$", line)
        if not m:
            continue
        # The term ends where the description starts: 2+ spaces, or the
        # end of the line for a term with its description below it.
        term = re.split(r"\s{2,}", m.group(1), maxsplit=1)[0]
        flags |= set(FLAG.findall(term))
        first = term.split()[0]
        if not first.startswith("-") and COMMAND.fullmatch(first):
            commands.add(first)
    return flags, commands


def page_terms(source):
    """(flags, commands) named in the term lines of the scdoc source."""
    flags, commands = set(), set()
    lines = source.splitlines()
    for i, line in enumerate(lines):
        # A term: a line that starts in bold, its description indented by a
        # tab on the next line.
        if not line.startswith("*") or i + 1 == len(lines) or \
                not lines[i + 1].startswith("\t"):
            continue
        text = re.sub(r"\\(.)", r"\1", line)          # scdoc escapes
        flags |= set(FLAG.findall(text))
        first = re.match(r"\*([^*]+)\*", text)
        if first and COMMAND.fullmatch(first.group(1)):
            commands.add(first.group(1))
    return flags, commands


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    prog, page = argv[1], argv[2]
    run = subprocess.run([prog, "--help"], capture_output=True, text=True,
                         timeout=30)
    if run.returncode != 0:
        print("FAIL: %s --help exited %d: %s" % (prog, run.returncode,
                                                 run.stderr.strip()))
        return 1
    with open(page, encoding="utf-8") as f:
        source = f.read()
    hflags, hcmds = help_terms(run.stdout)
    pflags, pcmds = page_terms(source)
    print("%s --help: %d flags %s; commands %s" % (prog, len(hflags),
          " ".join(sorted(hflags)), " ".join(sorted(hcmds)) or "none"))
    print("%s: %d flags %s; commands %s" % (page, len(pflags),
          " ".join(sorted(pflags)), " ".join(sorted(pcmds)) or "none"))

    bad = []
    if len(hflags) < 3:
        bad.append("found only %d flags in --help: the parse is broken"
                   % len(hflags))
    for f in sorted(hflags - pflags):
        bad.append("%s is in --help but not documented in %s" % (f, page))
    for f in sorted(pflags - hflags):
        bad.append("%s is documented in %s but not in --help" % (f, page))
    for c in sorted(hcmds - pcmds):
        bad.append("command %s is in --help but not in %s" % (c, page))
    for c in sorted(pcmds - hcmds):
        bad.append("command %s is in %s but not in --help" % (c, page))
    for b in bad:
        print("FAIL: " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
