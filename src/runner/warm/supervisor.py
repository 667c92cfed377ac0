"""guard-aws warm CLI supervisor (see src/runner/warm/pool.ts and SECURITY.md, "Warm CLI pool").

Imports the AWS CLI once and forks one child per run. The child turns itself into what a fresh `aws` would be
(sealed environment, private HOME, its own working directory, stdio wired to the run's streams, default signal
handlers, no descriptor of the supervisor, its own session, the run's own uid) and then runs the real aws entry
script with runpy: the same code a fresh process runs, minus the imports already done.

It speaks only to the broker that started it: a Unix socket in a directory only the broker (and this process,
running as the broker's uid inside bubblewrap) can enter. Every connection starts with one JSON header line:

  {"role": "control", "id": ID, "stdin": true|false}   the run; its request follows on the same connection
  {"role": "stdin"|"stdout"|"stderr", "id": ID}         the run's stdio, as plain byte streams afterwards

The request itself (argv, environment with the scoped credentials, working directory, uid) is read by the child
only: the supervisor never holds anything of a run in its memory, so no child can inherit another run's data.
On the control connection the broker may send {"signal": N}; the supervisor answers {"event": "exit", "code": C}
or {"event": "exit", "signal": N} when the child ends. The child itself writes {"event": "started"} once it is
set up (or {"event": "setup_failed", "error": ...}, and nothing ran).

Only the Python standard library; nothing here may print to stdout except the one `ready` line.
"""

import ctypes
import errno
import json
import os
import resource
import runpy
import selectors
import signal
import socket
import sys
import time

HEADER_MAX = 512
REQUEST_MAX = 64 * 1024 * 1024
ROLES = ('control', 'stdin', 'stdout', 'stderr')
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_SET_PDEATHSIG = 1
CAP_LAST_CAP = 63
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def log(msg):
    try:
        os.write(2, ('guard-aws warm supervisor: %s\n' % msg).encode('utf-8', 'replace'))
    except OSError:
        pass


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, '%s: %s' % (what, os.strerror(e)))


class _CapHeader(ctypes.Structure):
    _fields_ = [('version', ctypes.c_uint32), ('pid', ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [('effective', ctypes.c_uint32), ('permitted', ctypes.c_uint32), ('inheritable', ctypes.c_uint32)]


def clear_capabilities(libc):
    """capset(2) with every set empty (a process may always lower its own capabilities)."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(libc.capset(ctypes.byref(hdr), data), 'capset')


def capabilities_now(libc):
    """(effective, permitted, inheritable) as 64-bit masks: for tests and for the child's own check."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(libc.capget(ctypes.byref(hdr), data), 'capget')
    join = lambda f: getattr(data[0], f) | (getattr(data[1], f) << 32)
    return join('effective'), join('permitted'), join('inheritable')


def drop_to(uid, gid, libc):
    """Becomes uid/gid for good: no groups, no capabilities (bounding, inheritable, ambient, permitted), no_new_privs.

    As uid 0 with CAP_SETUID/CAP_SETGID/CAP_SETPCAP: the bounding set is emptied first (PR_CAPBSET_DROP needs
    CAP_SETPCAP), then setresuid to a non-zero uid clears the permitted, effective and ambient sets
    (capabilities(7), "Effect of user ID changes on capabilities"); capset empties the inheritable set.
    """
    if uid <= 0 or gid <= 0:
        raise OSError(errno.EPERM, 'a run must not run as root')
    if os.getuid() == 0:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        for cap in range(CAP_LAST_CAP + 1):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != errno.EINVAL:
                _check(-1, 'PR_CAPBSET_DROP')
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 'PR_SET_NO_NEW_PRIVS')
        os.setresuid(uid, uid, uid)
    elif (uid, gid) != (os.getuid(), os.getgid()):
        raise OSError(errno.EPERM, 'only a supervisor running as root can run a call as another uid')
    else:
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 'PR_SET_NO_NEW_PRIVS')
    clear_capabilities(libc)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or any(capabilities_now(libc)):
        raise OSError(errno.EPERM, 'privileges were not dropped')


def reset_signals():
    """The dispositions a fresh Python process starts with: all default, SIGINT raises KeyboardInterrupt, SIGPIPE
    and SIGXFSZ ignored (Python's own start-up), nothing blocked."""
    signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def read_line(sock, limit):
    """One line, byte by byte: nothing after the newline is consumed (it belongs to whoever reads next)."""
    buf = bytearray()
    while True:
        b = sock.recv(1)
        if not b:
            raise EOFError('connection closed before a full line')
        if b == b'\n':
            return bytes(buf)
        buf += b
        if len(buf) > limit:
            raise ValueError('line too long')


def read_request(sock):
    buf = bytearray()
    while b'\n' not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError('the request was cut off')
        buf += chunk
        if len(buf) > REQUEST_MAX:
            raise ValueError('the request is too large')
    line, _, rest = bytes(buf).partition(b'\n')
    if rest:
        raise ValueError('unexpected bytes after the request')
    return json.loads(line.decode('utf-8'))


def send(sock, obj):
    try:
        sock.sendall((json.dumps(obj) + '\n').encode('utf-8'))
    except OSError:
        pass


def exit_code_of(e):
    """What Python itself exits with for an uncaught SystemExit (Python/pythonrun.c handle_system_exit)."""
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(str(code) + '\n')
    except Exception:
        pass
    return 1


class Child:
    """The forked process: becomes the run, runs aws, never returns."""

    def __init__(self, aws_path, conns, parent_fds):
        self.aws_path = aws_path
        self.read_done = conns.pop('_done')
        self.supervisor_pid = os.getppid()
        self.conns = conns
        self.parent_fds = parent_fds

    def run(self):
        code = 70
        control = self.conns['control']
        try:
            reset_signals()
            os.setsid()
            for fd in self.parent_fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            req = read_request(control)
            os.close(self.read_done)
            libc = _libc()
            self.setup(req, libc)
            # Dies with the supervisor (it holds the run's control connection and reports the exit). Set after the
            # uid change, which clears it (prctl(2), PR_SET_PDEATHSIG); a supervisor already gone means exit now.
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != self.supervisor_pid:
                os._exit(70)
        except BaseException as e:  # noqa: BLE001 - nothing ran yet: report and leave
            send(control, {'event': 'setup_failed', 'error': '%s: %s' % (type(e).__name__, e)})
            os._exit(70)
        send(control, {'event': 'started'})
        control.close()
        # Every descriptor of the supervisor goes, except those the CLI's own imports opened (awscrt keeps
        # /dev/urandom open from its import on and loops forever once it is closed): a fresh aws has them too.
        keep = sorted(fd for fd in IMPORT_FDS if fd > 2)
        low = 3
        for fd in keep + [1 << 20]:
            if fd > low:
                os.closerange(low, fd)
            low = fd + 1
        code = self.exec_aws()
        os._exit(code)

    def setup(self, req, libc):
        argv = req['argv']
        env = req['env']
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise ValueError('argv must be a list of strings')
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ValueError('env must map strings to strings')
        # stdio: the run's own streams (or /dev/null for a run without stdin, as a fresh spawn's 'ignore').
        stdin = self.conns.get('stdin')
        if stdin is not None:
            os.dup2(stdin.fileno(), 0)
        else:
            null = os.open('/dev/null', os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
        os.dup2(self.conns['stdout'].fileno(), 1)
        os.dup2(self.conns['stderr'].fileno(), 2)
        for name in ('stdin', 'stdout', 'stderr'):
            c = self.conns.get(name)
            if c is not None:
                c.close()
        os.umask(int(req.get('umask', 0o022)))
        drop_to(int(req['uid']), int(req['gid']), libc)
        os.chdir(req['cwd'])
        # What importing the CLI did to the environment (awscli/__init__.py appends its data directory to
        # AWS_DATA_PATH), done again on top of the run's: a fresh process gets both the same way. A run whose own
        # environment names such a variable would get a different result: it is not run warm.
        for k in IMPORT_ENV:
            if k in env:
                raise ValueError('the run sets %s, which importing the CLI changes' % k)
        os.environ.clear()
        os.environ.update(env)
        os.environ.update(IMPORT_ENV)
        time.tzset()
        # sys.path as a fresh `python <aws>` builds it: the script's directory, then PYTHONPATH (the run's
        # private plugin directory), then the interpreter's own.
        extra = [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p]
        sys.path[1:1] = extra
        sys.argv = [self.aws_path] + argv

    def exec_aws(self):
        import traceback
        try:
            runpy.run_path(self.aws_path, run_name='__main__')
            code = 0
        except SystemExit as e:
            code = exit_code_of(e)
        except KeyboardInterrupt:
            traceback.print_exc()
            # As Python does for an uncaught KeyboardInterrupt: die from SIGINT (exit status 130 to the shell).
            self.finish()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
            code = 130
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            code = 1
        return self.finish(code)

    def finish(self, code=0):
        import atexit
        try:
            atexit._run_exitfuncs()
        except BaseException:  # noqa: BLE001
            pass
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except BaseException:  # noqa: BLE001
                # Python reports a failing flush at exit with status 120.
                code = 120
        return code


class Supervisor:
    def __init__(self, sock_path, aws_path):
        self.aws_path = aws_path
        self.sel = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.listener.bind(sock_path)
        finally:
            os.umask(old)
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, 'listen')
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self.on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.sel.register(self.wake_r, selectors.EVENT_READ, 'wake')
        self.pending = {}   # id -> {role: socket}
        self.want_stdin = {}  # id -> whether its control asked for a stdin connection
        self.children = {}  # pid -> control socket
        self.done = {}      # pid -> read end of its read_done pipe
        self.draining = False
        self.forks = 0

    def on_term(self, *_):
        # Stop taking runs; leave when the running ones have ended (they die with this process otherwise).
        self.draining = True

    def parent_fds(self):
        return [self.listener.fileno(), self.wake_r, self.wake_w] + list(self.done.values()) + [
            c.fileno() for c in self.children.values()
        ] + [s.fileno() for conns in self.pending.values() for s in conns.values()]

    def accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(True)
            conn.settimeout(5)
            try:
                hdr = json.loads(read_line(conn, HEADER_MAX).decode('utf-8'))
                role, rid = hdr['role'], hdr['id']
                if role not in ROLES or not isinstance(rid, str) or not 8 <= len(rid) <= 64:
                    raise ValueError('bad header')
            except Exception as e:  # noqa: BLE001
                log('refused a connection: %s' % e)
                conn.close()
                continue
            conn.settimeout(None)
            conns = self.pending.setdefault(rid, {})
            if role in conns:
                conn.close()
                continue
            conns[role] = conn
            if role == 'control':
                self.want_stdin[rid] = bool(hdr.get('stdin'))
            self.maybe_start(rid)

    def maybe_start(self, rid):
        conns = self.pending[rid]
        if 'control' not in conns or 'stdout' not in conns or 'stderr' not in conns:
            return
        if self.want_stdin.get(rid) and 'stdin' not in conns:
            return
        del self.pending[rid]
        self.want_stdin.pop(rid, None)
        socks = {k: v for k, v in conns.items()}
        if self.draining:
            send(socks['control'], {'event': 'setup_failed', 'error': 'the supervisor is being replaced'})
            for s in socks.values():
                s.close()
            return
        others = [fd for fd in self.parent_fds()]
        # The child reads its request from the control connection; the supervisor starts watching that connection
        # (for signals and for the broker leaving) only once the child has closed `read_done` — before that, the
        # bytes on it are the request, which the supervisor must neither see nor consume.
        done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(done_r)
            socks['_done'] = done_w
            try:
                self.sel.close()
            except Exception:  # noqa: BLE001
                pass
            Child(self.aws_path, socks, others).run()
            os._exit(70)  # not reached
        self.forks += 1
        control = socks.pop('control')
        for s in socks.values():
            s.close()
        os.close(done_w)
        self.children[pid] = control
        self.done[pid] = done_r
        self.sel.register(done_r, selectors.EVENT_READ, ('read_done', pid))

    def on_read_done(self, fd, pid):
        self.sel.unregister(fd)
        os.close(fd)
        self.done.pop(pid, None)
        control = self.children.get(pid)
        if control is not None:
            self.sel.register(control, selectors.EVENT_READ, ('control', pid))

    def on_control(self, pid):
        control = self.children.get(pid)
        if control is None:
            return
        try:
            data = control.recv(4096)
        except OSError:
            data = b''
        if not data:
            # The broker went away from this run: nobody would read or record it.
            self.kill(pid, signal.SIGKILL)
            self.sel.unregister(control)
            return
        for line in data.split(b'\n'):
            if not line.strip():
                continue
            try:
                sig = int(json.loads(line)['signal'])
            except Exception:  # noqa: BLE001
                continue
            if sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL):
                self.kill(pid, sig)

    def kill(self, pid, sig):
        # The child's own process group (it called setsid): aws and anything it started.
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            control = self.children.pop(pid, None)
            if control is None:
                continue
            if os.WIFSIGNALED(status):
                send(control, {'event': 'exit', 'signal': os.WTERMSIG(status)})
            else:
                send(control, {'event': 'exit', 'code': os.WEXITSTATUS(status)})
            try:
                self.sel.unregister(control)
            except (KeyError, ValueError):
                pass
            control.close()

    def serve(self):
        while True:
            if self.draining and not self.children:
                return
            for key, _ in self.sel.select(timeout=1.0):
                try:
                    self.dispatch(key)
                except Exception as e:  # noqa: BLE001 - one bad event must not take every run down
                    log('error handling an event: %s: %s' % (type(e).__name__, e))
            self.reap()

    def dispatch(self, key):
        tag = key.data
        if tag == 'listen':
            self.accept()
        elif tag == 'wake':
            try:
                while os.read(self.wake_r, 512):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
        elif tag[0] == 'read_done':
            self.on_read_done(key.fd, tag[1])
        elif tag[0] == 'control':
            self.on_control(tag[1])


IMPORT_ENV = {}
IMPORT_FDS = set()


def open_fds():
    found = set()
    for fd in range(3, 1024):
        try:
            os.fstat(fd)
        except OSError:
            continue
        found.add(fd)
    return found


def preload(services):
    """The CLI's modules and the models of the most used services, loaded before any fork (copy-on-write)."""
    import pkgutil  # noqa: F401  (runpy.run_path needs it)
    import traceback  # noqa: F401
    import awscli.clidriver  # noqa: F401
    import awscli.handlers  # noqa: F401
    import botocore.session
    try:
        loader = botocore.session.Session().get_component('data_loader')
        for name in services:
            try:
                loader.load_service_model(name, 'service-2')
            except Exception:  # noqa: BLE001
                pass
    except Exception:  # noqa: BLE001
        pass


def main():
    if len(sys.argv) < 3:
        log('usage: supervisor.py SOCKET AWS_SCRIPT [SERVICE…]')
        return 64
    sock_path, aws_path = sys.argv[1], sys.argv[2]
    services = sys.argv[3:]
    # The script's directory first on sys.path, as `python <aws>` has it.
    sys.path[0] = os.path.dirname(os.path.realpath(aws_path))
    before = dict(os.environ)
    fds_before = open_fds()
    try:
        preload(services)
    except Exception as e:  # noqa: BLE001
        log('cannot import the AWS CLI: %s' % e)
        return 69
    IMPORT_ENV.update({k: v for k, v in os.environ.items() if before.get(k) != v})
    import stat
    for fd in open_fds() - fds_before:
        if not stat.S_ISCHR(os.fstat(fd).st_mode):
            log('importing the AWS CLI left descriptor %d open on something other than a device' % fd)
            return 69
        IMPORT_FDS.add(fd)
    if any(k not in os.environ for k in before):
        log('importing the AWS CLI removed environment variables; cannot reproduce a fresh start')
        return 69
    import awscli
    sup = Supervisor(sock_path, aws_path)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.write(json.dumps({'ready': True, 'pid': os.getpid(), 'awscli': getattr(awscli, '__version__', ''),
                                 'awscliFile': awscli.__file__, 'rssKb': rss_kb,
                                 'importFds': sorted(IMPORT_FDS)}) + '\n')
    sys.stdout.flush()
    sup.serve()
    return 0


if __name__ == '__main__':
    sys.exit(main())
