#!/usr/bin/env python3
"""Runs a command on a real pseudo-terminal and types into it, as a person at a terminal would.

    pty-drive.py STEPS_JSON -- COMMAND ARGS...

STEPS_JSON is a list of [regex, text]: wait until the terminal output (so far, after the previous match) matches
regex, then type text (e.g. "\u0003" for Ctrl-C, which the terminal turns into SIGINT when it is in cooked mode,
or a keypress when a prompt reads it raw). Everything the command wrote is copied to stdout; the exit status is
the command's (128 + n when signal n ended it). A step that never matches within 60 s ends with status 124.

Node has no pseudo-terminal of its own without a native module (node-pty); Python's pty module is a real one.
"""
import json
import os
import pty
import re
import select
import sys
import time

steps = json.loads(sys.argv[1])
cmd = sys.argv[sys.argv.index('--') + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)

out = b''
pos = 0
deadline = time.time() + 60
step = 0


def read_some(timeout):
    global out
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return True
    try:
        data = os.read(fd, 4096)
    except OSError:
        return False
    if not data:
        return False
    out += data
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return True


alive = True
while alive:
    if step < len(steps):
        m = re.search(steps[step][0].encode(), out[pos:])
        if m:
            pos += m.end()
            time.sleep(0.2)  # let the program reach its read after printing the prompt
            os.write(fd, steps[step][1].encode())
            step += 1
            deadline = time.time() + 60
            continue
        if time.time() > deadline:
            sys.stderr.write(f'pty-drive: step {step} never matched {steps[step][0]!r}\n')
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.exit(124)
    alive = read_some(0.1)

_, status = os.waitpid(pid, 0)
if os.WIFSIGNALED(status):
    sys.exit(128 + os.WTERMSIG(status))
sys.exit(os.WEXITSTATUS(status))
