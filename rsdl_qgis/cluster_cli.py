"""rsdl-scheduler, rsdl-worker, rsdl-slurm: a Dask cluster for rsdl_qgis, one command each.

``make install`` writes three small commands (in ~/.local/bin) that put the plugin's folder
and its private dependency folder on PYTHONPATH and run this file, so that the scheduler
and every worker can import rsdl_qgis (a Dask scheduler reads each task it is given, and
so must import the module that defined it). Anything after the command's own options is
handed to Dask's `dask scheduler` / `dask worker` as it is.

Secure by default: a Dask scheduler runs what its clients send, so nothing listens on
every interface unless asked.
- rsdl-scheduler listens on 127.0.0.1 (this machine only) unless --host names the
  interface the other machines reach; its dashboard (HTTP) on 127.0.0.1 always.
- rsdl-worker listens on 127.0.0.1 when its scheduler is on this machine, else on the one
  address of this machine that routes to the scheduler; one thread (TensorFlow already
  uses every core for one model call).
- rsdl-slurm keeps a scheduler here (on --host) and submits single-thread workers as
  SLURM jobs, each listening on its node's address towards the scheduler; on SIGTERM or
  Ctrl-C it cancels its jobs before it ends.
- TLS: with Dask's TLS settings in its configuration (docs/cluster.md shows the file),
  every command uses tls:// (``--protocol tls`` is implied).

No qgis import here.
"""
import argparse
import ipaddress
import os
import shlex
import signal
import socket
import sys
import time
from typing import Any, Dict

HERE = os.path.dirname(os.path.abspath(__file__))
if not __package__:         # run as a file (make install): import the plugin beside it
    sys.path.insert(0, os.path.dirname(HERE))

from rsdl_qgis.engine.cluster import DEFAULT_PORT, split_address, tls_configured  # noqa: E402
from rsdl_qgis.engine.jobs import SCHEDULER  # noqa: E402

COMMANDS = ("rsdl-scheduler", "rsdl-worker", "rsdl-slurm")


def protocol(given=None):
    """tls when Dask's configuration holds TLS certificates, else tcp (or what is given)."""
    if given:
        return given
    return "tls" if tls_configured() else "tcp"


def is_loopback(host):
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return host == "localhost"


def address_towards(host, port=DEFAULT_PORT):
    """This machine's address on the interface that routes to `host` (no packet is
    sent: a UDP socket is only connected); 127.0.0.1 when `host` is this machine."""
    if is_loopback(host):
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((socket.gethostbyname(host), port))
        return s.getsockname()[0]


def _has(args, *names):
    return any(a == n or a.startswith(n + "=") for a in args for n in names)


def scheduler_args(args):
    """`dask scheduler` arguments: the user's, with the secure defaults added."""
    out = list(args)
    if not _has(args, "--host", "--interface"):
        out += ["--host", "127.0.0.1"]
    if not _has(args, "--port"):
        out += ["--port", str(DEFAULT_PORT)]
    if not _has(args, "--protocol"):
        out += ["--protocol", protocol()]
    if not _has(args, "--dashboard-address"):
        # its HTTP server (dashboard, health, metrics) runs even with --no-dashboard
        out += ["--dashboard-address", "127.0.0.1:8787"]
    return out


def worker_args(address, args):
    """`dask worker` arguments for the scheduler at `address`, secure defaults added."""
    out = [address] + list(args)
    if not _has(args, "--host", "--interface", "--listen-address"):
        _, host, port = split_address(address)
        out += ["--host", address_towards(host, port)]
    if not _has(args, "--nthreads"):
        out += ["--nthreads", "1"]
    if not _has(args, "--dashboard-address"):
        out += ["--dashboard-address", "127.0.0.1:0"]
    if not _has(args, "--protocol") and "://" not in address:
        out += ["--protocol", protocol()]
    return out


def _run_click(main, args, prog):
    sys.argv = [prog] + args
    try:
        main.main(args=args, prog_name=prog, standalone_mode=True)
    except SystemExit as exc:
        return exc.code or 0
    return 0


def scheduler(args):
    from distributed.cli import dask_scheduler
    args = scheduler_args(args)
    print(f"rsdl-scheduler: dask scheduler {shlex.join(args)}", file=sys.stderr, flush=True)
    return _run_click(dask_scheduler.main, args, "rsdl-scheduler")


def worker(args):
    if not args or args[0].startswith("-"):
        print("usage: rsdl-worker SCHEDULER_ADDRESS [dask worker options]", file=sys.stderr)
        return 2
    from distributed.cli import dask_worker
    args = worker_args(args[0], args[1:])
    print(f"rsdl-worker: dask worker {shlex.join(args)}", file=sys.stderr, flush=True)
    return _run_click(dask_worker.main, args, "rsdl-worker")


def slurm_parser():
    p = argparse.ArgumentParser(
        prog="rsdl-slurm", description="A Dask scheduler here and rsdl workers as SLURM "
        "jobs; cancels its jobs on SIGTERM or Ctrl-C.")
    p.add_argument("--jobs", type=int, default=1, help="SLURM jobs, one worker each")
    p.add_argument("--queue", help="SLURM partition (default: the cluster's default)")
    p.add_argument("--cores", type=int, default=4,
                   help="cores per job, for TensorFlow (the worker runs one task at a time)")
    p.add_argument("--memory", default="8GB", help="memory per job")
    p.add_argument("--walltime", default="04:00:00")
    p.add_argument("--gpus", type=int, default=0, help="GPUs per job (--gres=gpu:N)")
    p.add_argument("--job-extra", action="append", default=[],
                   help="one more #SBATCH line, e.g. --job-extra=--account=proj (repeat)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address the scheduler listens on: one the compute nodes reach "
                   "(default 127.0.0.1: nodes on this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--scheduler-file", help="write the scheduler's address there (JSON)")
    p.add_argument("--print-script", action="store_true",
                   help="print the job script and end")
    return p


def slurm_cluster(opts):
    from dask_jobqueue import SLURMCluster
    proto = protocol()
    path = os.pathsep.join(os.path.abspath(p) for p in
                           os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
    # each job's worker listens on its node's address towards the scheduler, not on
    # every interface (computed on the node, in the job script)
    towards = (f"RSDL_HOST=$({shlex.quote(sys.executable)} -m rsdl_qgis.cluster_cli "
               f"towards {shlex.quote(opts.host)} {opts.port})")
    env = f"export PYTHONPATH={shlex.quote(path)}"
    extra = [f"--gres=gpu:{opts.gpus}"] if opts.gpus else []
    kwargs: Dict[str, Any] = {}
    if proto == "tls":
        from distributed.security import Security
        kwargs["security"] = Security()
        kwargs["protocol"] = "tls://"
    return SLURMCluster(
        queue=opts.queue, cores=opts.cores, processes=1, memory=opts.memory,
        walltime=opts.walltime, job_extra_directives=extra + opts.job_extra,
        job_script_prologue=[env, towards], python=sys.executable,
        # one task at a time: TensorFlow uses the job's cores for one model call
        worker_extra_args=["--nthreads", "1", "--dashboard-address", "127.0.0.1:0",
                           "--host", '"$RSDL_HOST"'],
        # the scheduler's HTTP server (dashboard) on this machine only, as rsdl-scheduler's
        # (left to Dask it would follow --host onto the cluster's network)
        scheduler_options={"host": opts.host, "port": opts.port,
                           "dashboard_address": "127.0.0.1:8787"},
        **kwargs)


def slurm(args):
    opts = slurm_parser().parse_args(args)
    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum
        raise KeyboardInterrupt

    cluster = slurm_cluster(opts)
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if opts.print_script:
            print(cluster.job_script())
            return 0
        cluster.scale(jobs=opts.jobs)
        print(f"{SCHEDULER} = {cluster.scheduler_address}", flush=True)
        if opts.scheduler_file:
            import json
            tmp = opts.scheduler_file + ".tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"address": cluster.scheduler_address}, fh)
            os.replace(tmp, opts.scheduler_file)
        print(f"rsdl-slurm: {opts.jobs} job(s) submitted; stop with Ctrl-C or SIGTERM, "
              "which cancels them", file=sys.stderr, flush=True)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print("rsdl-slurm: stopping, cancelling the SLURM jobs", file=sys.stderr, flush=True)
        return 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        cluster.close()


def towards(args):
    """`towards HOST [PORT]`: this machine's address towards HOST (a job script's)."""
    port = int(args[1]) if len(args) > 1 else 0
    print(address_towards(args[0], port or DEFAULT_PORT))
    return 0


def profile_deps(plugin_dir=None):
    """The dependency folder the plugin menu installs into, for a plugin that sits in a
    QGIS profile (<root>/profiles/<name>/python/plugins/rsdl_qgis, as the plugin manager
    puts it); None elsewhere."""
    from rsdl_qgis.deps import settings_root_of, shared_deps_dir
    plugin_dir = os.path.abspath(plugin_dir or HERE)
    profile = os.path.dirname(os.path.dirname(os.path.dirname(plugin_dir)))
    parts = os.path.normpath(plugin_dir).split(os.sep)
    if len(parts) < 6 or parts[-3:-1] != ["python", "plugins"] or parts[-5] != "profiles":
        return None
    return shared_deps_dir(settings_root_of(profile))


def install_commands(args):
    """Write the three commands into a folder (make install: ~/.local/bin)."""
    p = argparse.ArgumentParser(
        prog="cluster_cli.py install",
        description="Write rsdl-scheduler, rsdl-worker and rsdl-slurm into a folder.")
    p.add_argument("--bin", default=os.path.expanduser(os.path.join("~", ".local", "bin")),
                   help="folder of the commands (default ~/.local/bin)")
    p.add_argument("--deps", default=profile_deps(),
                   help="the plugin's dependency folder (default: the one the plugin menu "
                   "installs into, for a plugin in a QGIS profile)")
    p.add_argument("--python", default=sys.executable)
    opts = p.parse_args(args)
    if not opts.deps:
        p.error("--deps: give the plugin's dependency folder (this plugin is not in a "
                "QGIS profile's python/plugins folder)")
    os.makedirs(opts.bin, exist_ok=True)
    path = f"{os.path.abspath(opts.deps)}:{os.path.dirname(HERE)}"
    for name in COMMANDS:
        target = os.path.join(opts.bin, name)
        text = ("#!/bin/sh\n"
                f"# {name}: written by rsdl_qgis's make install (rsdl_qgis/cluster_cli.py)\n"
                f'PYTHONPATH={shlex.quote(path)}"${{PYTHONPATH:+:$PYTHONPATH}}"\n'
                "export PYTHONPATH\n"
                f'exec {shlex.quote(opts.python)} -m rsdl_qgis.cluster_cli '
                f'{name.split("-")[1]} "$@"\n')
        tmp = target + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    print(f"Installed {', '.join(COMMANDS)} into {opts.bin}")
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"scheduler": scheduler, "worker": worker, "slurm": slurm,
                "install": install_commands, "towards": towards}
    if not argv or argv[0] not in commands:
        print(f"usage: {os.path.basename(sys.argv[0])} {{{','.join(commands)}}} ...",
              file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
