"""Tests of src/runner/warm/supervisor.py on its own (run by test/runner/warm-supervisor.test.ts).

The supervisor is started for real (the AWS CLI's own Python, so it imports the real CLI) with a stand-in "aws"
script that reports the state it starts in: what a warm child sees must be what a fresh `aws` would see, and
nothing of another run. Without bubblewrap here: the sandbox is the pool's business (isolation.test.ts runs the
escape tests on the warm path); this is about the process itself.
"""

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SUPERVISOR = os.path.join(HERE, '..', '..', '..', 'src', 'runner', 'warm', 'supervisor.py')
IS_ROOT = os.getuid() == 0
RUN_UID = 2000000123 if IS_ROOT else os.getuid()

PROBE = r'''
import json, os, signal, sys
mode = sys.argv[1]
if mode == 'state':
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    fds = []
    for fd in range(0, 1024):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            pass
    disp = {}
    for name in ('SIGINT', 'SIGTERM', 'SIGPIPE', 'SIGCHLD', 'SIGHUP', 'SIGXFSZ', 'SIGUSR1'):
        h = signal.getsignal(getattr(signal, name))
        disp[name] = 'int' if h is signal.default_int_handler else ('ign' if h == signal.SIG_IGN else ('dfl' if h == signal.SIG_DFL else 'other'))
    import awscli
    print(json.dumps({
        'uid': os.getresuid(), 'gid': os.getresgid(), 'groups': os.getgroups(),
        'cwd': os.getcwd(), 'env': dict(os.environ), 'argv': sys.argv, 'fds': fds,
        'sid': os.getsid(0) == os.getpid(), 'pgrp': os.getpgrp() == os.getpid(),
        'signals': disp, 'blocked': sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        'nnp': libc.prctl(39, 0, 0, 0, 0),
        'bounding': [c for c in range(41) if libc.prctl(23, c, 0, 0, 0) == 1],
        'leak': getattr(awscli, 'LEAK', None), 'path1': sys.path[1],
        'stdout_unbuffered': sys.stdout.write_through if hasattr(sys.stdout, 'write_through') else None,
    }))
elif mode == 'corrupt':
    import awscli
    awscli.LEAK = os.environ.get('SECRET')
    json.dumps = None
    sys.modules.pop('awscli.clidriver', None)
    print('corrupted')
elif mode == 'exit':
    sys.exit(int(sys.argv[2]))
elif mode == 'message':
    sys.exit('bye')
elif mode == 'raise':
    raise RuntimeError('boom')
elif mode == 'kill':
    os.kill(os.getpid(), signal.SIGTERM)
elif mode == 'echo':
    data = sys.stdin.buffer.read()
    sys.stdout.buffer.write(data[::-1])
    sys.stderr.write('err:%d\n' % len(data))
elif mode == 'sleep':
    import time
    print('sleeping', flush=True)
    time.sleep(60)
'''


class Run:
    def __init__(self, sock_path, argv, env, cwd, stdin=None):
        self.id = os.urandom(8).hex()
        self.control = self._conn(sock_path, {'role': 'control', 'id': self.id, 'stdin': stdin is not None})
        self.out = self._conn(sock_path, {'role': 'stdout', 'id': self.id})
        self.err = self._conn(sock_path, {'role': 'stderr', 'id': self.id})
        self.inp = self._conn(sock_path, {'role': 'stdin', 'id': self.id}) if stdin is not None else None
        req = {'argv': argv, 'env': env, 'cwd': cwd, 'uid': RUN_UID, 'gid': RUN_UID}
        self.control.sendall((json.dumps(req) + '\n').encode())
        self.result = {}
        self.threads = [threading.Thread(target=self._drain, args=(self.out, 'stdout')),
                        threading.Thread(target=self._drain, args=(self.err, 'stderr'))]
        for t in self.threads:
            t.start()
        if stdin is not None:
            self.inp.sendall(stdin)
            self.inp.shutdown(socket.SHUT_WR)

    @staticmethod
    def _conn(path, header):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall((json.dumps(header) + '\n').encode())
        return s

    def _drain(self, s, name):
        buf = b''
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
        self.result[name] = buf

    def events(self, until='exit', timeout=20):
        self.control.settimeout(timeout)
        buf = b''
        seen = []
        while True:
            try:
                b = self.control.recv(4096)
            except socket.timeout:
                break
            if not b:
                break
            buf += b
            while b'\n' in buf:
                line, buf = buf.split(b'\n', 1)
                seen.append(json.loads(line))
                if seen[-1].get('event') == until:
                    return seen
        return seen

    def finish(self):
        ev = self.events()
        for t in self.threads:
            t.join(10)
        for sock in (self.control, self.out, self.err, self.inp):
            if sock is not None:
                sock.close()
        return ev, self.result.get('stdout', b''), self.result.get('stderr', b'')


class SupervisorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='guard-aws-warm-test-')
        os.chmod(cls.tmp, 0o755)
        cls.aws = os.path.join(cls.tmp, 'aws')
        with open(cls.aws, 'w') as f:
            f.write('#!%s\n%s' % (sys.executable, PROBE))
        os.chmod(cls.aws, 0o755)
        cls.sockdir = tempfile.mkdtemp(prefix='guard-aws-warm-sock-')
        cls.sock = os.path.join(cls.sockdir, 's')
        env = {'PATH': '/usr/bin:/bin', 'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8', 'HOME': '/nonexistent',
               'PYTHONUNBUFFERED': '1', 'PYTHONDONTWRITEBYTECODE': '1', 'PYTHONNOUSERSITE': '1'}
        cls.proc = subprocess.Popen([sys.executable, SUPERVISOR, cls.sock, cls.aws, 'sts'], env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        cls.hello = json.loads(cls.proc.stdout.readline())

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.kill()
        cls.proc.wait()
        cls.proc.stdout.close()
        cls.proc.stderr.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        shutil.rmtree(cls.sockdir, ignore_errors=True)

    def run_dir(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        if IS_ROOT:
            os.chown(d, RUN_UID, RUN_UID)
        return d

    def env(self, **extra):
        e = {'PATH': '/usr/bin:/bin', 'HOME': '/h', 'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8', 'PYTHONPATH': '/plugin-dir'}
        e.update(extra)
        return e

    def start(self, argv, env=None, stdin=None):
        return Run(self.sock, argv, env or self.env(), self.run_dir(), stdin)

    def test_ready_line(self):
        self.assertTrue(self.hello['ready'])
        self.assertGreater(self.hello['pid'], 1)
        self.assertTrue(self.hello['awscliFile'].endswith('awscli/__init__.py'))

    def test_child_starts_as_a_fresh_aws_would(self):
        r = self.start(['state'], self.env(SECRET='s1'))
        ev, out, err = r.finish()
        self.assertEqual([e['event'] for e in ev], ['started', 'exit'], err)
        self.assertEqual(ev[-1].get('code'), 0, err)
        st = json.loads(out)
        # The run's environment, plus what importing the CLI adds in any fresh process (AWS_DATA_PATH).
        self.assertEqual(set(st['env']) - {'AWS_DATA_PATH'}, set(self.env(SECRET='s1')))
        self.assertEqual(st['env']['SECRET'], 's1')
        self.assertEqual(st['argv'], [self.aws, 'state'])
        self.assertEqual(st['path1'], '/plugin-dir')
        # stdio only: no descriptor of the supervisor (its socket, its other runs' connections, its pipes) —
        # except devices the CLI's import itself opened, as in any fresh aws (v2's awscrt keeps /dev/urandom).
        self.assertEqual(st['fds'], [0, 1, 2] + self.hello['importFds'])
        self.assertTrue(st['sid'])
        self.assertTrue(st['pgrp'])
        self.assertEqual(st['signals'], {'SIGINT': 'int', 'SIGTERM': 'dfl', 'SIGPIPE': 'ign', 'SIGCHLD': 'dfl',
                                         'SIGHUP': 'dfl', 'SIGXFSZ': 'ign', 'SIGUSR1': 'dfl'})
        self.assertEqual(st['blocked'], [])
        self.assertEqual(st['nnp'], 1)
        self.assertTrue(st['stdout_unbuffered'])
        self.assertEqual(st['uid'], [RUN_UID] * 3)
        if IS_ROOT:
            self.assertEqual(st['gid'], [RUN_UID] * 3)
            self.assertEqual(st['groups'], [])
            self.assertEqual(st['bounding'], [])

    def test_a_run_that_corrupts_the_interpreter_does_not_affect_the_next(self):
        r = self.start(['corrupt'], self.env(SECRET='run-one-secret'))
        ev, out, err = r.finish()
        self.assertEqual(out, b'corrupted\n', err)
        r2 = self.start(['state'])
        ev2, out2, err2 = r2.finish()
        self.assertEqual(ev2[-1].get('code'), 0, err2)
        st = json.loads(out2)
        self.assertIsNone(st['leak'])
        self.assertNotIn('SECRET', st['env'])
        self.assertNotIn(b'run-one-secret', out2 + err2)

    def test_concurrent_runs_each_get_their_own_streams(self):
        runs = [self.start(['echo'], stdin=('payload-%d' % i).encode() * 1000) for i in range(4)]
        for i, r in enumerate(runs):
            ev, out, err = r.finish()
            self.assertEqual(ev[-1].get('code'), 0, err)
            self.assertEqual(out, (('payload-%d' % i).encode() * 1000)[::-1])
            self.assertEqual(err, b'err:%d\n' % len(('payload-%d' % i).encode() * 1000))

    def test_a_run_starts_while_another_is_still_connecting(self):
        # Run A has only its control connection (asking for stdin too) when run B arrives complete.
        a_id = os.urandom(8).hex()
        a = Run._conn(self.sock, {'role': 'control', 'id': a_id, 'stdin': True})
        ev, out, err = self.start(['exit', '5']).finish()
        self.assertEqual(ev[-1].get('code'), 5, err)
        a.close()

    def test_exit_codes_and_signals_are_reported_exactly(self):
        for argv, expect, err_text in ((['exit', '7'], {'code': 7}, b''), (['exit', '0'], {'code': 0}, b''),
                                       (['message'], {'code': 1}, b'bye\n'), (['raise'], {'code': 1}, b'RuntimeError: boom'),
                                       (['kill'], {'signal': 15}, b'')):
            ev, out, err = self.start(argv).finish()
            last = {k: v for k, v in ev[-1].items() if k in ('code', 'signal')}
            self.assertEqual(last, expect, (argv, err))
            self.assertIn(err_text, err)

    def test_a_signal_from_the_broker_reaches_the_run_and_its_group(self):
        r = self.start(['sleep'])
        self.assertEqual(r.events(until='started')[-1]['event'], 'started')
        deadline = time.time() + 10
        while b'sleeping' not in r.result.get('stdout', b'') and time.time() < deadline:
            time.sleep(0.05)
            # stdout is read by a thread; peek is not possible: give it a moment.
            if time.time() > deadline - 9:
                break
        r.control.sendall(b'{"signal": 15}\n')
        ev, out, err = r.finish()
        self.assertEqual(ev[-1].get('signal'), 15)

    def test_the_broker_leaving_a_run_kills_it(self):
        r = self.start(['sleep'])
        self.assertEqual(r.events(until='started')[-1]['event'], 'started')
        r.control.close()
        for t in r.threads:
            t.join(10)
        # Its stdout ended: the process (the only holder of it) is gone.
        self.assertFalse(any(t.is_alive() for t in r.threads))

    def test_garbage_and_requests_it_must_refuse(self):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.sock)
        s.sendall(b'not json\n')
        self.assertEqual(s.recv(10), b'')
        s.close()
        # A run as root is refused before anything runs.
        global RUN_UID
        saved = RUN_UID
        RUN_UID = 0
        try:
            ev = self.start(['state']).events(until='setup_failed')
        finally:
            RUN_UID = saved
        self.assertEqual(ev[-1]['event'], 'setup_failed')
        self.assertIn('root', ev[-1]['error'])
        # The supervisor is still there for the next run.
        ev, out, err = self.start(['exit', '3']).finish()
        self.assertEqual(ev[-1].get('code'), 3)


class SupervisorCrashTest(unittest.TestCase):
    def test_a_killed_supervisor_takes_its_runs_down_and_says_nothing_false(self):
        tmp = tempfile.mkdtemp(prefix='guard-aws-warm-crash-')
        os.chmod(tmp, 0o755)
        aws = os.path.join(tmp, 'aws')
        with open(aws, 'w') as f:
            f.write(PROBE)
        sock = os.path.join(tmp, 's')
        proc = subprocess.Popen([sys.executable, SUPERVISOR, sock, aws], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env={'PATH': '/usr/bin:/bin', 'PYTHONUNBUFFERED': '1', 'HOME': '/nonexistent'})
        try:
            json.loads(proc.stdout.readline())
            d = tempfile.mkdtemp(dir=tmp)
            if IS_ROOT:
                os.chown(d, RUN_UID, RUN_UID)
            r = Run(sock, ['sleep'], {'PATH': '/usr/bin:/bin'}, d)
            self.assertEqual(r.events(until='started')[-1]['event'], 'started')
            proc.kill()
            proc.wait()
            ev = r.events()
            # No exit event: the broker must not take this for an exit of aws.
            self.assertEqual([e for e in ev if e.get('event') == 'exit'], [])
            for t in r.threads:
                t.join(10)
            self.assertFalse(any(t.is_alive() for t in r.threads), 'the child outlived its supervisor')
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    unittest.main()
