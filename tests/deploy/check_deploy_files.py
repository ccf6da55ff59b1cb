#!/usr/bin/python3
"""Checks the deployment files under deploy/ against the real order_platform binary.

Run by tests/deploy/deploy_files_test.sh (see there for usage). Docker and Kubernetes are not
available where the tests run, so this reads the files the way those tools would and checks that
what they pass to the binary is real:

  * every --flag given to order_platform (Dockerfile CMD/RUN, compose commands, Kubernetes args,
    flag files in deploy/config/ and in ConfigMaps) is a flag of the binary (`--helpfull`), and the
    binary itself accepts each complete command line (`--only_check_args`, flag files included);
  * every flag given to order_platform_cli (health checks) is one of its flags;
  * ports: EXPOSE, published and container ports, Service ports/targetPorts, gRPC probe ports,
    prometheus.io/port annotations, Prometheus scrape targets and --*_target addresses equal the
    ports the binary listens on (--listen / --metrics_listen as configured, else their defaults);
  * gRPC health probes name a service the server registers (services/server/platform.cc) for the
    services that container runs;
  * cross references: ConfigMaps, Secrets and keys, volume mounts and flag-file paths, Service and
    PodDisruptionBudget selectors, ServiceMonitor ports, kustomization resources, compose mounts
    and depends_on, the Grafana data source and dashboard folder;
  * the image: the build stage installs only packages deploy/install-deps.sh installs; the runtime
    packages provide the binaries' shared libraries (when this host is Debian 12 with dpkg).

Standard library only (tests/deploy/minyaml.py reads the YAML). When PyYAML happens to be
installed, every file is also read with it and the two readings must agree.
"""

import argparse
import glob
import os
import re
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minyaml  # noqa: E402

SERVER = "order_platform"
CLI = "order_platform_cli"
IMAGE_REPOSITORY = "order-platform"  # image name (last path component, without tag) of deploy/Dockerfile
# Abseil usage flags: valid on every Abseil binary but not listed by --helpfull.
USAGE_FLAGS = {"help", "helpfull", "helpshort", "helppackage", "version", "only_check_args",
               "helpon", "helpmatch"}
SUBCOMMANDS = {"serve", "migrate"}
MIGRATE_ARGS = {"up": 0, "down": 1, "version": 0, "force": 1}
BASE_IMAGE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}  # present in debian:bookworm-slim


class Checker:
    def __init__(self, repo, server, cli, help_text, cli_help_text):
        self.repo = repo
        self.server = server
        self.cli = cli
        self.errors = []
        self.notes = []
        self.counts = {}
        self.server_flags = parse_help(help_text)
        self.cli_flags = parse_help(cli_help_text)
        if "listen" not in self.server_flags or "metrics_listen" not in self.server_flags:
            raise SystemExit("`order_platform --helpfull` lists no --listen/--metrics_listen: "
                             f"is {server} the server binary?")
        if "target" not in self.cli_flags:
            raise SystemExit(f"`order_platform_cli --helpfull` lists no --target: is {cli} the CLI?")
        self.health_names = self.read_health_names()
        self.env_names = set(re.findall(r'"(ORDER_PLATFORM_[A-Z0-9_]+)"',
                                        read(os.path.join(repo, "services/server/flags.cc"))))
        if "ORDER_PLATFORM_DATABASE_URL" not in self.env_names:
            raise SystemExit("services/server/flags.cc names no ORDER_PLATFORM_DATABASE_URL: "
                             "update tests/deploy/check_deploy_files.py")
        self.tmpdir = tempfile.mkdtemp(prefix="deploy_files_test.")
        self.dockerfile = None

    # ---- reporting -------------------------------------------------------------------------------

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    def count(self, what, n=1):
        self.counts[what] = self.counts.get(what, 0) + n

    def rel(self, path):
        return os.path.relpath(path, self.repo)

    def load_yaml(self, path):
        display = self.rel(path)
        text = read(path)
        try:
            docs = minyaml.load_all(text, display)
        except minyaml.YamlError as e:
            self.error(display, f"cannot read YAML: {e}")
            return []
        try:
            import yaml  # optional cross-check of the minimal reader
        except ImportError:
            return docs
        reference = [d for d in yaml.safe_load_all(text) if d is not None]
        if reference != docs:
            self.error(display, "tests/deploy/minyaml.py and PyYAML read this file differently; "
                       "simplify the YAML or fix minyaml.py")
        return docs

    # ---- facts from the sources ------------------------------------------------------------------

    def read_health_names(self):
        text = read(os.path.join(self.repo, "services/server/platform.cc"))
        names = {}
        for service, name in re.findall(r'\{\s*"(\w+)"\s*,\s*"(order_platform\.[\w.]+)"\s*\}', text):
            names.setdefault(service, set()).add(name)
        workflow = set(re.findall(r'SetServingStatus\(\s*"(order_platform\.saga\.v1\.\w+)"', text))
        if not names or not workflow:
            raise SystemExit("cannot find the health service names in services/server/platform.cc "
                             "(HealthNames() and the WorkflowService SetServingStatus): update "
                             "tests/deploy/check_deploy_files.py")
        # The workflow service is registered wherever the orders service runs.
        names.setdefault("orders", set()).update(workflow)
        return names

    def served_health_names(self, services):
        result = {""}  # the overall server status
        for s in services:
            result |= self.health_names.get(s, set())
        return result

    # ---- command lines ---------------------------------------------------------------------------

    def check_cli_argv(self, where, argv, grpc_port=None):
        """argv after the program name. Returns the effective --target."""
        target = self.cli_flags["target"]
        for token in argv:
            if not token.startswith("-"):
                continue
            name, value = split_flag(token)
            if name not in self.cli_flags and name not in USAGE_FLAGS:
                self.error(where, f"{token}: order_platform_cli has no flag --{name}")
            if name == "target" and value is not None:
                target = value
        self.count("order_platform_cli command lines")
        if grpc_port is not None and argv and "health" in argv:
            port = port_of(target)
            if port != grpc_port:
                self.error(where, f"health check calls {target} but the server listens on port "
                           f"{grpc_port}")
        return target

    def check_server_argv(self, where, argv, flagfiles, run_binary=True):
        """argv after the program name; flagfiles maps a path as the container sees it to
        (local path or None, text). Returns the effective configuration: {flag: value,
        '_command': [...], '_set': set of flags given}."""
        config = dict(self.server_flags)
        config["_set"] = set()
        positional = []
        local_argv = []

        def apply(tokens, origin, depth):
            for token in tokens:
                if not token.startswith("-") or token == "-":
                    positional.append(token)
                    if depth == 0:
                        local_argv.append(token)
                    continue
                if token == "--":
                    self.error(origin, "'--' ends flag parsing; not expected here")
                    continue
                name, value = split_flag(token)
                bool_name = name[2:] if name.startswith("no") and value is None else None
                if name in self.server_flags or name in USAGE_FLAGS:
                    pass
                elif bool_name and self.server_flags.get(bool_name) in ("true", "false"):
                    name, value = bool_name, "false"
                else:
                    self.error(origin, f"{token}: order_platform has no flag --{name} "
                               f"(its flags: {', '.join(sorted(self.server_flags))})")
                    continue
                if name == "flagfile":
                    paths = [p for p in (value or "").split(",") if p]
                    local_paths = []
                    for path in paths:
                        if path not in flagfiles:
                            self.error(origin, f"--flagfile={path}: no flag file is provided at "
                                       "that path (no mount or file maps to it)")
                            continue
                        local, text = flagfiles[path]
                        self.count("flag files")
                        lines = flagfile_lines(text, f"{origin} (flag file {path})", self.error)
                        apply(lines, f"{origin} (flag file {path})", depth + 1)
                        if local is None:
                            local = os.path.join(self.tmpdir, f"flagfile{len(os.listdir(self.tmpdir))}")
                            with open(local, "w") as f:
                                f.write(text)
                        local_paths.append(local)
                    if depth == 0:
                        local_argv.append("--flagfile=" + ",".join(local_paths))
                    continue
                if value is None:
                    value = "true"
                config[name] = value
                config["_set"].add(name)
                if depth == 0:
                    local_argv.append(token)

        apply(argv, where, 0)
        self.count("order_platform command lines")
        command = positional[:1] or ["serve"]
        if command[0] not in SUBCOMMANDS:
            self.error(where, f"unknown subcommand {command[0]!r} (order_platform runs serve or "
                       "migrate)")
        elif command[0] == "serve" and len(positional) > 1:
            self.error(where, f"serve takes no arguments, got {positional[1:]}")
        elif command[0] == "migrate":
            rest = positional[1:]
            if not rest or rest[0] not in MIGRATE_ARGS or len(rest) != 1 + MIGRATE_ARGS[rest[0]]:
                self.error(where, f"migrate needs up | down N | version | force V, got {rest}")
        config["_command"] = positional or ["serve"]
        config["_services"] = [s.strip() for s in config["services"].split(",") if s.strip()]
        for s in config["_services"]:
            if s not in self.health_names:
                self.error(where, f"--services names unknown service {s!r}")
        if run_binary:
            # The binary's own parser: unknown flags, bad values and flag-file syntax.
            result = subprocess.run([self.server] + local_argv + ["--only_check_args"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    timeout=60)
            self.count("command lines accepted by order_platform --only_check_args")
            if result.returncode != 0:
                self.error(where, "order_platform rejects this command line "
                           f"({' '.join(argv)}): {result.stdout.strip()}")
        return config

    def check_database(self, where, config, env_names):
        """The DSN of every service the process runs comes from a flag or the environment."""
        if "database_url" in config["_set"] or "ORDER_PLATFORM_DATABASE_URL" in env_names:
            return
        for s in config["_services"]:
            if f"{s}_database_url" not in config["_set"] and \
                    f"ORDER_PLATFORM_{s.upper()}_DATABASE_URL" not in env_names:
                self.error(where, f"no database for service {s}: set ORDER_PLATFORM_DATABASE_URL "
                           f"(or ORDER_PLATFORM_{s.upper()}_DATABASE_URL, or --database_url)")

    def check_env_names(self, where, names):
        for name in names:
            if name.startswith("ORDER_PLATFORM_") and name not in self.env_names:
                self.error(where, f"environment variable {name} is not read by order_platform "
                           f"(it reads {', '.join(sorted(self.env_names))})")

    def ports_of(self, where, config):
        grpc = port_of(config["listen"])
        if grpc is None or grpc == 0:
            self.error(where, f"--listen={config['listen']} has no fixed port")
        metrics = port_of(config["metrics_listen"]) if config["metrics_listen"] else None
        if config["metrics_listen"] and not metrics:
            self.error(where, f"--metrics_listen={config['metrics_listen']} has no fixed port")
        return grpc, metrics

    def check_coordinator_targets(self, where, config, resolve_target):
        """Where orders runs with the coordinator, each participant must be served locally or
        reachable at --<participant>_target; resolve_target(target, participant) checks one."""
        if "orders" not in config["_services"] or config["coordinator"] != "true":
            return
        for participant in ("inventory", "payments"):
            target = config[f"{participant}_target"]
            if target:
                resolve_target(target, participant)
                self.count("coordinator targets")
            elif participant not in config["_services"]:
                self.error(where, f"the coordinator runs here but {participant} does not and "
                           f"--{participant}_target is not set: it would call itself")

    # ---- Dockerfile ------------------------------------------------------------------------------

    def check_dockerfile(self):
        path = os.path.join(self.repo, "deploy/Dockerfile")
        where = self.rel(path)
        stages = parse_dockerfile(read(path))
        if not stages:
            self.error(where, "no FROM")
            return
        final = stages[-1]
        info = {"entrypoint": None, "cmd": None, "expose": [], "user": None, "copies": [],
                "healthcheck": None}
        for lineno, instr, args in final["instructions"]:
            if instr == "ENTRYPOINT":
                info["entrypoint"] = docker_argv(args)
            elif instr == "CMD":
                info["cmd"] = docker_argv(args)
            elif instr == "EXPOSE":
                info["expose"] += [(lineno, a.split("/")[0]) for a in args.split()]
            elif instr == "USER":
                info["user"] = (lineno, args.strip())
            elif instr == "COPY":
                info["copies"].append(args)
            elif instr == "HEALTHCHECK":
                info["healthcheck"] = (lineno, args)
        entry = info["entrypoint"] or []
        if not entry or os.path.basename(entry[0]) != SERVER:
            self.error(where, f"the final stage's ENTRYPOINT must run {SERVER} (compose and the "
                       f"Kubernetes manifests pass only its arguments); it is {entry}")
        default_argv = entry[1:] + (info["cmd"] or [])
        config = self.check_server_argv(f"{where} (ENTRYPOINT + CMD)", default_argv, {})
        grpc, metrics = self.ports_of(where, config)
        self.image_config = config
        exposed = {int(p) for _, p in info["expose"] if p.isdigit()}
        wanted = {grpc} | ({metrics} if metrics else set())
        if exposed != wanted:
            self.error(where, f"EXPOSE {sorted(exposed)} but the server listens on {sorted(wanted)} "
                       "(--listen, --metrics_listen)")
        self.count("port references", len(info["expose"]))
        user = info["user"]
        if user is None or user[1].split(":")[0] in ("root", "0"):
            self.error(where, "the runtime stage must switch to a non-root USER")
        programs_copied = set()
        for copy in info["copies"]:
            for token in copy.split():
                programs_copied.add(os.path.basename(token))
        used = {SERVER}
        if info["healthcheck"] is None:
            self.error(where, "no HEALTHCHECK in the runtime stage")
        else:
            lineno, args = info["healthcheck"]
            m = re.search(r"\bCMD\s+(.*)$", args, re.S)
            if not m:
                self.error(f"{where}:{lineno}", "HEALTHCHECK without CMD")
            else:
                argv = docker_argv(m.group(1))
                found = self.check_invocations(f"{where}:{lineno} HEALTHCHECK", argv, grpc)
                used |= found
                if CLI not in found:
                    self.error(f"{where}:{lineno}", f"HEALTHCHECK should use {CLI} health")
        for program in used:
            if program not in programs_copied:
                self.error(where, f"{program} is used but no COPY in the runtime stage installs it")
        # Invocations of the binaries in RUN lines (e.g. smoke tests in the build stage).
        for stage in stages:
            for lineno, instr, args in stage["instructions"]:
                if instr == "RUN":
                    self.check_invocations(f"{where}:{lineno} RUN", shell_split(args), None,
                                           run_binary=False)
        # Packages.
        install_deps = read(os.path.join(self.repo, "deploy/install-deps.sh"))
        known = set()
        for block in re.findall(r"(?:^|\n)\s*(?:bazel_)?packages=\((.*?)\)", install_deps, re.S):
            known |= set(re.sub(r"#.*", "", block).split())
        for stage in stages[:-1]:
            for lineno, instr, args in stage["instructions"]:
                if instr == "RUN":
                    for pkg in apt_packages(args):
                        self.count("build packages")
                        if pkg not in known:
                            self.error(f"{where}:{lineno}", f"build stage installs {pkg}, which "
                                       "deploy/install-deps.sh does not (keep the two in step)")
        runtime_packages = set()
        for lineno, instr, args in final["instructions"]:
            if instr == "RUN":
                runtime_packages |= set(apt_packages(args))
        if not runtime_packages:
            self.error(where, "the runtime stage installs no packages (the binaries need shared "
                       "libraries)")
        self.check_runtime_libraries(where, runtime_packages)
        self.dockerfile = info

    def check_invocations(self, where, tokens, grpc_port, run_binary=True):
        """Finds order_platform / order_platform_cli in a shell-split command and checks each
        one's flags. Returns the programs found."""
        found = set()
        segment = []
        for token in tokens + [";"]:
            if token in (";", "&&", "||", "|", "&") or token.startswith(">") or token == "<":
                self.check_segment(where, segment, grpc_port, found, run_binary)
                segment = []
            else:
                segment.append(token)
        return found

    def check_segment(self, where, segment, grpc_port, found, run_binary):
        """A simple command: the program is its first word after VAR=value assignments (and
        `exec`/`env`), so `cmake --target order_platform` is not an invocation."""
        i = 0
        while i < len(segment) and (re.match(r"[A-Za-z_][A-Za-z0-9_]*=", segment[i]) or
                                    segment[i] in ("exec", "env")):
            i += 1
        if i >= len(segment):
            return
        name = os.path.basename(segment[i])
        if name == CLI:
            found.add(CLI)
            self.check_cli_argv(where, segment[i + 1:], grpc_port)
        elif name == SERVER:
            found.add(SERVER)
            self.check_server_argv(where, segment[i + 1:], {}, run_binary=run_binary)

    def check_runtime_libraries(self, where, runtime_packages):
        """The runtime packages (with their dependencies) provide every shared library the binaries
        load directly. Only where this host is Debian 12 with dpkg (the image's base)."""
        os_release = read("/etc/os-release") if os.path.exists("/etc/os-release") else ""
        if "VERSION_CODENAME=bookworm" not in os_release or not which("dpkg-query") or \
                not which("readelf") or not which("ldd"):
            self.notes.append("runtime library check skipped (needs a Debian 12 host with dpkg, "
                              "readelf, ldd)")
            return
        provided = set(runtime_packages) | BASE_IMAGE_PACKAGES
        for pkg in runtime_packages:
            result = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", pkg],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if result.returncode != 0:
                self.error(where, f"runtime package {pkg} is not a Debian 12 package installed "
                           "here (dpkg-query knows nothing of it)")
                continue
            for dep in result.stdout.split(","):
                for alt in dep.split("|"):
                    name = alt.strip().split(" ")[0].split(":")[0]
                    if name:
                        provided.add(name)
        needed_by = []  # (binary, library, path)
        for binary in (self.server, self.cli):
            needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                                run_text(["readelf", "-d", binary]))
            ldd = run_text(["ldd", binary])
            paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.M))
            # The dynamic loader is listed by path only: "/lib64/ld-linux-x86-64.so.2 (0x...)".
            for loader in re.findall(r"^\s*(/\S+) \(0x", ldd, re.M):
                paths.setdefault(os.path.basename(loader), loader)
            for lib in needed:
                path = paths.get(lib)
                if path is None:
                    self.error(where, f"{os.path.basename(binary)} needs {lib}, which ldd cannot "
                               "find")
                elif re.match(r"/(usr/)?lib", os.path.realpath(path)) or re.match(r"/(usr/)?lib", path):
                    needed_by.append((binary, lib, path))
                # else: not a system library (e.g. one Bazel built): not the image's business
        owners = dpkg_owners([path for _, _, path in needed_by])
        for binary, lib, path in needed_by:
            owner = owners.get(path)
            if owner is None:
                self.error(where, f"{os.path.basename(binary)} needs {path}, which no Debian "
                           "package installed here provides")
                continue
            self.count("shared libraries")
            if owner not in provided:
                self.error(where, f"{os.path.basename(binary)} needs {lib} (Debian package "
                           f"{owner}), which the runtime stage does not install")

    # ---- compose ---------------------------------------------------------------------------------

    def check_compose(self):
        path = os.path.join(self.repo, "deploy/compose.yaml")
        where = self.rel(path)
        docs = self.load_yaml(path)
        if len(docs) != 1 or not isinstance(docs[0], dict):
            self.error(where, "expected one mapping document")
            return
        services = docs[0].get("services") or {}
        base = os.path.dirname(path)
        configs = {}
        prometheus_services = {}
        for name, svc in services.items():
            swhere = f"{where} services.{name}"
            mounts = compose_mounts(svc, base)
            for container, host in mounts.items():
                if host is not None and not os.path.exists(host):
                    self.error(swhere, f"mounts {self.rel(host)}, which does not exist")
            if not self.is_platform_image(svc, base):
                image = str(svc.get("image", ""))
                if image_repository(image) == "prometheus":
                    prometheus_services[name] = (svc, mounts)
                continue
            argv = svc.get("command")
            if argv is None:
                argv = (self.dockerfile or {}).get("cmd") or []
            elif isinstance(argv, str):
                argv = shlex.split(argv)
            if svc.get("entrypoint") is not None:
                self.error(swhere, "overrides the image's ENTRYPOINT; the checks assume "
                           f"{SERVER} (pass arguments with command:)")
            argv = [str(a) for a in argv]
            flagfiles = {c: (h, read(h)) for c, h in mounts.items()
                         if h is not None and os.path.isfile(h)}
            config = self.check_server_argv(swhere, argv, flagfiles)
            env = compose_env(svc)
            self.check_env_names(swhere, env)
            self.check_database(swhere, config, env)
            for var in ("ORDER_PLATFORM_DATABASE_URL",) + tuple(
                    f"ORDER_PLATFORM_{s.upper()}_DATABASE_URL" for s in config["_services"]):
                dsn = env.get(var)
                if dsn:
                    host = dsn_host(dsn)
                    if host and host not in services:
                        self.error(swhere, f"{var} points at host {host!r}, which is not a "
                                   "service of this compose file")
            grpc, metrics = self.ports_of(swhere, config)
            configs[name] = config
            serving = config["_command"][0] == "serve"
            for spec in svc.get("ports") or []:
                container_port = compose_container_port(spec)
                self.count("port references")
                if container_port not in (grpc, metrics) or not serving:
                    self.error(swhere, f"publishes container port {spec!r}, but the server listens "
                               f"on {grpc} (gRPC) and {metrics} (metrics)")
            hc = svc.get("healthcheck") or {}
            test = hc.get("test")
            if hc.get("disable") is True or test in (["NONE"], "NONE"):
                pass
            elif test is not None:
                argv = test[1:] if isinstance(test, list) and test[0] == "CMD" else \
                    shell_split(test[1] if isinstance(test, list) else test)
                if CLI not in self.check_invocations(f"{swhere} healthcheck", [str(a) for a in argv],
                                                     grpc):
                    self.error(swhere, f"healthcheck should use {CLI} health")
            elif not serving:
                self.error(swhere, "a one-shot container should disable the image's HEALTHCHECK "
                           "(healthcheck: {disable: true})")
            if serving:
                grace = parse_duration(str(svc.get("stop_grace_period", "10s")))
                shutdown = parse_duration(config["shutdown_grace"])
                if grace is None or shutdown is None or grace <= shutdown:
                    self.error(swhere, f"stop_grace_period ({svc.get('stop_grace_period', '10s')}) "
                               f"must exceed --shutdown_grace ({config['shutdown_grace']})")
        # depends_on
        for name, svc in services.items():
            deps = svc.get("depends_on") or {}
            if isinstance(deps, list):
                deps = {d: {"condition": "service_started"} for d in deps}
            for dep, spec in deps.items():
                swhere = f"{where} services.{name}.depends_on.{dep}"
                if dep not in services:
                    self.error(swhere, "no such service")
                    continue
                condition = (spec or {}).get("condition", "service_started")
                if condition == "service_healthy" and not services[dep].get("healthcheck") and \
                        not self.is_platform_image(services[dep], base):
                    self.error(swhere, "waits for service_healthy but that service has no "
                               "healthcheck")
                if condition == "service_completed_successfully" and \
                        configs.get(dep, {}).get("_command", ["serve"])[0] == "serve":
                    self.error(swhere, "waits for completion of a service that never exits")
            config = configs.get(name)
            if config and config["_command"][0] == "serve":
                migrators = [n for n, c in configs.items() if c["_command"][:2] == ["migrate", "up"]]
                if migrators and not any(
                        (deps.get(m) or {}).get("condition") == "service_completed_successfully"
                        for m in migrators):
                    self.error(f"{where} services.{name}", f"should depend on {migrators[0]} "
                               "with condition service_completed_successfully (the server refuses "
                               "an old schema)")
        self.compose = {"services": services, "configs": configs, "base": base}
        self.check_prometheus(prometheus_services)
        self.check_grafana(services, base, prometheus_services)

    def is_platform_image(self, svc, base):
        build = svc.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile",
                                                                               "Dockerfile")
            resolved = os.path.normpath(os.path.join(base, context, dockerfile))
            if resolved == os.path.normpath(os.path.join(self.repo, "deploy/Dockerfile")):
                return True
        return image_repository(str(svc.get("image", ""))) == IMAGE_REPOSITORY

    # ---- Prometheus and Grafana (compose stack) --------------------------------------------------

    def check_prometheus(self, prometheus_services):
        path = os.path.join(self.repo, "deploy/prometheus/prometheus.yml")
        where = self.rel(path)
        docs = self.load_yaml(path)
        if len(docs) != 1:
            self.error(where, "expected one document")
            return
        config = docs[0]
        # Where compose mounts this file, and whether the rule globs land in a mounted folder.
        for name, (svc, mounts) in prometheus_services.items():
            container_config = [c for c, h in mounts.items()
                                if h and os.path.exists(h) and os.path.samefile(h, path)]
            if not container_config:
                self.error(f"deploy/compose.yaml services.{name}", f"does not mount {where}")
                continue
            for pattern in config.get("rule_files") or []:
                container_dir = os.path.normpath(os.path.join(
                    os.path.dirname(container_config[0]), os.path.dirname(pattern)))
                host = mounts.get(container_dir)
                if host is None or not os.path.isdir(host):
                    self.error(where, f"rule_files {pattern!r} resolves to {container_dir} in the "
                               f"container, which compose service {name} does not mount from a "
                               "folder of deploy/")
        platform_targets = 0
        services = self.compose["services"]
        for job in config.get("scrape_configs") or []:
            path_ = job.get("metrics_path", "/metrics")
            for static in job.get("static_configs") or []:
                for target in static.get("targets") or []:
                    host, _, port = str(target).rpartition(":")
                    cfg = self.compose["configs"].get(host)
                    if host in services and cfg is None and \
                            self.is_platform_image(services[host], self.compose["base"]):
                        cfg = {}
                    if cfg is None:
                        continue
                    if not cfg or cfg["_command"][0] != "serve":
                        self.error(where, f"job {job.get('job_name')} scrapes {target}, which is "
                                   "not a serving platform container")
                        continue
                    platform_targets += 1
                    self.count("port references")
                    _, metrics = self.ports_of(where, cfg)
                    if not port.isdigit() or int(port) != metrics:
                        self.error(where, f"job {job.get('job_name')} scrapes {target} but "
                                   f"{host} serves metrics on port {metrics} (--metrics_listen)")
                    if path_ != "/metrics":
                        self.error(where, f"job {job.get('job_name')}: metrics_path {path_} but "
                                   "the server serves /metrics")
        if platform_targets == 0:
            self.error(where, "no scrape job targets the platform's metrics port")

    def check_grafana(self, services, base, prometheus_services):
        grafana = [(n, s) for n, s in services.items()
                   if image_repository(str(s.get("image", ""))) == "grafana"]
        prov = os.path.join(self.repo, "deploy/grafana/provisioning")
        dashboards = os.path.join(self.repo, "deploy/grafana/dashboards")
        for name, svc in grafana:
            swhere = f"deploy/compose.yaml services.{name}"
            mounts = compose_mounts(svc, base)
            by_host = {os.path.normpath(h): c for c, h in mounts.items() if h}
            if by_host.get(os.path.normpath(prov)) != "/etc/grafana/provisioning":
                self.error(swhere, "must mount ./grafana/provisioning at /etc/grafana/provisioning")
            dash_mount = by_host.get(os.path.normpath(dashboards))
            if dash_mount is None:
                self.error(swhere, "does not mount ./grafana/dashboards")
            for f in sorted(glob.glob(os.path.join(prov, "dashboards", "*.y*ml"))):
                for doc in self.load_yaml(f):
                    for provider in doc.get("providers") or []:
                        p = (provider.get("options") or {}).get("path")
                        self.count("grafana providers")
                        if p != dash_mount:
                            self.error(self.rel(f), f"provider {provider.get('name')} reads {p}, "
                                       f"but compose mounts the dashboards at {dash_mount}")
            sources = 0
            for f in sorted(glob.glob(os.path.join(prov, "datasources", "*.y*ml"))):
                for doc in self.load_yaml(f):
                    for ds in doc.get("datasources") or []:
                        if ds.get("type") != "prometheus":
                            continue
                        sources += 1
                        m = re.match(r"https?://([^:/]+)(?::(\d+))?", str(ds.get("url", "")))
                        host = m.group(1) if m else None
                        if host not in prometheus_services:
                            self.error(self.rel(f), f"data source {ds.get('name')} points at "
                                       f"{ds.get('url')}, not at a Prometheus compose service")
                            continue
                        listen = "0.0.0.0:9090"
                        for arg in prometheus_services[host][0].get("command") or []:
                            if str(arg).startswith("--web.listen-address="):
                                listen = str(arg).split("=", 1)[1]
                        if m.group(2) is None or int(m.group(2)) != port_of(listen):
                            self.error(self.rel(f), f"data source url {ds.get('url')} but "
                                       f"Prometheus listens on {listen}")
            if sources == 0:
                self.error(swhere, "no Prometheus data source is provisioned")

    # ---- Kubernetes ------------------------------------------------------------------------------

    def check_kubernetes(self):
        root = os.path.join(self.repo, "deploy/k8s")
        objects = []
        for path in sorted(glob.glob(os.path.join(root, "**", "*.y*ml"), recursive=True)):
            where = self.rel(path)
            docs = self.load_yaml(path)
            if os.path.basename(path) in ("kustomization.yaml", "kustomization.yml"):
                for doc in docs:
                    for res in doc.get("resources") or []:
                        target = os.path.join(os.path.dirname(path), res)
                        if os.path.isdir(target):
                            if not glob.glob(os.path.join(target, "kustomization.y*ml")):
                                self.error(where, f"resource {res} is a folder without a "
                                           "kustomization.yaml")
                        elif not os.path.isfile(target):
                            self.error(where, f"resource {res} does not exist")
                        self.count("kustomization resources")
                continue
            for i, doc in enumerate(docs):
                if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion") \
                        or not (doc.get("metadata") or {}).get("name"):
                    self.error(f"{where} document {i + 1}", "not a Kubernetes object "
                               "(apiVersion, kind, metadata.name)")
                    continue
                objects.append((where, doc))
        self.count("Kubernetes objects", len(objects))
        seen = {}
        namespaces = {"default"}
        for where, obj in objects:
            key = (obj["kind"], namespace_of(obj), obj["metadata"]["name"])
            if key in seen:
                self.error(where, f"{key[0]} {key[2]} is also defined in {seen[key]}")
            seen[key] = where
            if obj["kind"] == "Namespace":
                namespaces.add(obj["metadata"]["name"])
        for where, obj in objects:
            if obj["kind"] != "Namespace" and namespace_of(obj) not in namespaces:
                self.error(where, f"{obj['kind']} {obj['metadata']['name']} is in namespace "
                           f"{namespace_of(obj)}, which no manifest creates")

        def find(kind, ns, name):
            for where, obj in objects:
                if obj["kind"] == kind and namespace_of(obj) == ns and obj["metadata"]["name"] == name:
                    return obj
            return None

        workloads = []  # (where, obj, pod template, {container name: config})
        for where, obj in objects:
            template = pod_template(obj)
            if template is None:
                continue
            owhere = f"{where} {obj['kind']}/{obj['metadata']['name']}"
            configs = self.check_pod(owhere, obj, template, find)
            workloads.append((owhere, obj, template, configs))

        services = [(w, o) for w, o in objects if o["kind"] == "Service"]

        def selected(selector, ns):
            return [wl for wl in workloads if namespace_of(wl[1]) == ns and selector and
                    labels_match(selector, (wl[2].get("metadata") or {}).get("labels") or {})]

        service_ports = {}  # (ns, service name) -> {port number: container port, port name: ...}
        for where, svc in services:
            swhere = f"{where} Service/{svc['metadata']['name']}"
            ns = namespace_of(svc)
            spec = svc.get("spec") or {}
            pods = selected(spec.get("selector") or {}, ns)
            if not pods:
                self.error(swhere, f"selector {spec.get('selector')} matches no workload's pods")
                continue
            resolved = {}
            for port in spec.get("ports") or []:
                self.count("port references")
                target = port.get("targetPort", port.get("port"))
                for wl in pods:
                    for cname, (container, config) in wl[3].items():
                        number = resolve_container_port(container, target)
                        if number is None:
                            self.error(swhere, f"port {port.get('name')}: targetPort {target} is "
                                       f"not a port of container {cname} in {wl[0]}")
                            continue
                        grpc, metrics = self.ports_of(wl[0], config)
                        role = {grpc: "grpc", metrics: "metrics"}.get(number)
                        if role is None:
                            self.error(swhere, f"port {port.get('name')} targets container port "
                                       f"{number}, where the server does not listen (gRPC {grpc}, "
                                       f"metrics {metrics})")
                        elif port.get("name") in ("grpc", "metrics") and port.get("name") != role:
                            self.error(swhere, f"port named {port.get('name')} targets the {role} "
                                       f"port {number}")
                        if port.get("port") != number:
                            self.error(swhere, f"port {port.get('name')} is {port.get('port')} but "
                                       f"targets {number}: keep them equal (clients dial "
                                       f"<service>:{number})")
                        resolved[port.get("port")] = (role, wl)
                        resolved[port.get("name")] = (role, wl)
            service_ports[(ns, svc["metadata"]["name"])] = resolved

        # Coordinator targets: a Service that serves the participant on its gRPC port.
        for owhere, obj, template, configs in workloads:
            ns = namespace_of(obj)
            for cname, (container, config) in configs.items():
                if config["_command"][0] != "serve":
                    continue

                def resolve_target(target, participant, owhere=owhere, ns=ns):
                    host, port = split_host_port(target.split("///")[-1])
                    parts = host.split(".")
                    name, target_ns = parts[0], parts[1] if len(parts) > 1 else ns
                    ports = service_ports.get((target_ns, name))
                    if ports is None:
                        self.error(owhere, f"--{participant}_target={target}: no Service {name} in "
                                   f"namespace {target_ns}")
                        return
                    entry = ports.get(port)
                    if entry is None or entry[0] != "grpc":
                        self.error(owhere, f"--{participant}_target={target}: Service {name} has "
                                   f"no port {port} leading to a gRPC port")
                        return
                    wl = entry[1]
                    if not any(participant in c["_services"] for _, c in wl[3].values()):
                        self.error(owhere, f"--{participant}_target={target}: Service {name} "
                                   f"selects {wl[0]}, which does not run {participant}")
                self.check_coordinator_targets(owhere, config, resolve_target)

        # PodDisruptionBudgets and coverage of replicated serving workloads.
        covered = set()
        for where, pdb in objects:
            if pdb["kind"] != "PodDisruptionBudget":
                continue
            pwhere = f"{where} PodDisruptionBudget/{pdb['metadata']['name']}"
            spec = pdb.get("spec") or {}
            pods = selected((spec.get("selector") or {}).get("matchLabels") or {}, namespace_of(pdb))
            if not pods:
                self.error(pwhere, "selector matches no workload's pods")
            for wl in pods:
                covered.add(id(wl[1]))
                replicas = (wl[1].get("spec") or {}).get("replicas", 1)
                min_available = spec.get("minAvailable")
                if isinstance(min_available, int) and min_available >= replicas:
                    self.error(pwhere, f"minAvailable {min_available} with {replicas} replicas in "
                               f"{wl[0]}: no pod could ever be evicted (node drains block)")
                if spec.get("maxUnavailable") == 0:
                    self.error(pwhere, "maxUnavailable 0 blocks every eviction")
        for owhere, obj, template, configs in workloads:
            serving = any(c["_command"][0] == "serve" for _, c in configs.values())
            if serving and obj["kind"] in ("Deployment", "StatefulSet"):
                if id(obj) not in covered:
                    self.error(owhere, "no PodDisruptionBudget selects its pods")

        # ServiceMonitors, and that every serving workload is scraped somehow.
        monitored = set()
        for where, sm in objects:
            if sm["kind"] != "ServiceMonitor":
                continue
            mwhere = f"{where} ServiceMonitor/{sm['metadata']['name']}"
            spec = sm.get("spec") or {}
            names = ((spec.get("namespaceSelector") or {}).get("matchNames")) or [namespace_of(sm)]
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            matched = [(w, s) for w, s in services if namespace_of(s) in names and
                       labels_match(selector, (s.get("metadata") or {}).get("labels") or {})]
            if not matched:
                self.error(mwhere, "selects no Service")
            for endpoint in spec.get("endpoints") or []:
                self.count("port references")
                if endpoint.get("path", "/metrics") != "/metrics":
                    self.error(mwhere, f"endpoint path {endpoint.get('path')}; the server serves "
                               "/metrics")
                for w, s in matched:
                    entry = service_ports.get((namespace_of(s), s["metadata"]["name"]), {}).get(
                        endpoint.get("port"))
                    if entry is None or entry[0] != "metrics":
                        self.error(mwhere, f"endpoint port {endpoint.get('port')!r} is not a "
                                   f"metrics port of Service {s['metadata']['name']}")
                    else:
                        monitored.add(id(entry[1][1]))
        for owhere, obj, template, configs in workloads:
            serving = any(c["_command"][0] == "serve" for _, c in configs.values())
            annotations = (template.get("metadata") or {}).get("annotations") or {}
            if serving and annotations.get("prometheus.io/scrape") != "true" and \
                    id(obj) not in monitored:
                self.error(owhere, "not scraped: no prometheus.io/scrape annotation and no "
                           "ServiceMonitor selects a Service of it")

    def check_pod(self, owhere, obj, template, find):
        ns = namespace_of(obj)
        spec = template.get("spec") or {}
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        configs = {}
        containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
        for container in containers:
            cname = container.get("name")
            cwhere = f"{owhere} container {cname}"
            if image_repository(str(container.get("image", ""))) != IMAGE_REPOSITORY:
                continue
            command = [str(c) for c in container.get("command") or []]
            args = [str(a) for a in container.get("args") or []]
            if command and os.path.basename(command[0]) != SERVER:
                self.check_invocations(cwhere, command + args, None)
                continue
            argv = command[1:] + args if command else args
            if not command and not args:
                argv = (self.dockerfile or {}).get("cmd") or []
            flagfiles = self.k8s_files(cwhere, container, volumes, ns, find)
            config = self.check_server_argv(cwhere, argv, flagfiles)
            configs[cname] = (container, config)
            env = set()
            for e in container.get("env") or []:
                env.add(e.get("name"))
                ref = (e.get("valueFrom") or {})
                for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    if key in ref:
                        self.check_key_ref(cwhere, kind, ns, ref[key], find)
            for e in container.get("envFrom") or []:
                for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                    if key in e:
                        source = find(kind, ns, e[key].get("name"))
                        if source is None:
                            self.error(cwhere, f"envFrom {kind} {e[key].get('name')} is not "
                                       "defined in deploy/k8s")
                        else:
                            env |= {e.get("prefix", "") + k for k in object_keys(source)}
            self.check_env_names(cwhere, env)
            self.check_database(cwhere, config, env)
            grpc, metrics = self.ports_of(cwhere, config)
            serving = config["_command"][0] == "serve"
            for port in container.get("ports") or []:
                self.count("port references")
                number = port.get("containerPort")
                expected = {"grpc": grpc, "metrics": metrics}.get(port.get("name"))
                if number not in (grpc, metrics) or (expected is not None and number != expected):
                    self.error(cwhere, f"containerPort {port.get('name')}={number}, but the server "
                               f"listens on {grpc} (gRPC) and {metrics} (metrics)")
            served = self.served_health_names(config["_services"])
            for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = container.get(probe_name)
                if probe is None:
                    if serving and probe_name != "startupProbe" and obj["kind"] != "Job" and \
                            container in (spec.get("containers") or []):
                        self.error(cwhere, f"no {probe_name}")
                    continue
                pwhere = f"{cwhere} {probe_name}"
                if "grpc" in probe:
                    self.count("gRPC probes")
                    self.count("port references")
                    if probe["grpc"].get("port") != grpc:
                        self.error(pwhere, f"gRPC probe on port {probe['grpc'].get('port')}, but the "
                                   f"server listens on {grpc} (gRPC probes need a number)")
                    service = probe["grpc"].get("service", "")
                    if service not in served:
                        self.error(pwhere, f"health service {service!r} is not registered by a "
                                   f"server running --services={config['services']} (it registers "
                                   f"{sorted(served)}; see services/server/platform.cc)")
                elif "exec" in probe:
                    cmd = [str(c) for c in probe["exec"].get("command") or []]
                    self.check_invocations(pwhere, cmd, grpc)
                elif "tcpSocket" in probe or "httpGet" in probe:
                    target = (probe.get("tcpSocket") or probe.get("httpGet")).get("port")
                    if resolve_container_port(container, target) not in (grpc, metrics):
                        self.error(pwhere, f"probes port {target}, where the server does not listen")
            resources = container.get("resources") or {}
            for section, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
                if key not in (resources.get(section) or {}):
                    self.error(cwhere, f"no resources.{section}.{key}")
            if serving and container in (spec.get("containers") or []):
                if annotations.get("prometheus.io/scrape") == "true":
                    self.count("port references")
                    if str(annotations.get("prometheus.io/port")) != str(metrics):
                        self.error(owhere, f"prometheus.io/port is "
                                   f"{annotations.get('prometheus.io/port')!r}; metrics are on "
                                   f"port {metrics}")
                    if annotations.get("prometheus.io/path", "/metrics") != "/metrics":
                        self.error(owhere, "prometheus.io/path must be /metrics")
                grace = spec.get("terminationGracePeriodSeconds", 30)
                shutdown = parse_duration(config["shutdown_grace"]) or 0
                pre_stop = 0
                hook = ((container.get("lifecycle") or {}).get("preStop") or {})
                cmd = [str(c) for c in (hook.get("exec") or {}).get("command") or []]
                if len(cmd) == 2 and cmd[0] in ("sleep", "/bin/sleep") and cmd[1].isdigit():
                    pre_stop = int(cmd[1])
                elif "sleep" in hook:
                    pre_stop = int(hook["sleep"].get("seconds", 0))
                if grace <= shutdown + pre_stop:
                    self.error(owhere, f"terminationGracePeriodSeconds {grace} must exceed preStop "
                               f"({pre_stop}s) + --shutdown_grace ({config['shutdown_grace']})")
        return configs

    def k8s_files(self, cwhere, container, volumes, ns, find):
        """Files a container sees from ConfigMap volumes: {path: (None, text)}."""
        files = {}
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount.get("name"))
            if volume is None:
                self.error(cwhere, f"volumeMount {mount.get('name')} has no volume")
                continue
            if "configMap" not in volume:
                continue
            cm_name = volume["configMap"].get("name")
            cm = find("ConfigMap", ns, cm_name)
            if cm is None:
                self.error(cwhere, f"volume {mount.get('name')}: ConfigMap {cm_name} is not defined "
                           "in deploy/k8s")
                continue
            data = cm.get("data") or {}
            items = volume["configMap"].get("items")
            paths = {i.get("key"): i.get("path") for i in items} if items else {k: k for k in data}
            for key, rel in paths.items():
                if key not in data:
                    self.error(cwhere, f"ConfigMap {cm_name} has no key {key}")
                    continue
                sub = mount.get("subPath")
                if sub:
                    if sub == rel:
                        files[mount["mountPath"]] = (None, data[key])
                else:
                    files[os.path.join(mount["mountPath"], rel)] = (None, data[key])
        return files

    def check_key_ref(self, cwhere, kind, ns, ref, find):
        source = find(kind, ns, ref.get("name"))
        if source is None:
            if not ref.get("optional"):
                self.error(cwhere, f"{kind} {ref.get('name')} is not defined in deploy/k8s (add an "
                           "example manifest)")
            return
        if ref.get("key") not in object_keys(source):
            self.error(cwhere, f"{kind} {ref.get('name')} has no key {ref.get('key')}")

    # ---- flag files ------------------------------------------------------------------------------

    def check_flag_files(self):
        """Every flag file under deploy/config/ is valid for the binary on its own."""
        for path in sorted(glob.glob(os.path.join(self.repo, "deploy/config/*.txt"))):
            where = self.rel(path)
            self.check_server_argv(where, ["--flagfile=" + path], {path: (path, read(path))})

    def run(self):
        self.check_dockerfile()
        self.check_compose()
        self.check_kubernetes()
        self.check_flag_files()


# ---- helpers ---------------------------------------------------------------------------------------

def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def run_text(argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout


def which(program):
    return any(os.access(os.path.join(d, program), os.X_OK)
               for d in os.environ.get("PATH", "/usr/bin:/bin").split(":"))


def parse_help(text):
    """{flag name: default value} from Abseil --helpfull output."""
    flags = {}
    starts = list(re.finditer(r"^\s+--([A-Za-z0-9_]+) \(", text, re.M))
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        chunk = text[m.start():end]
        # "--name (description); default: value;" (the description may itself say "default:").
        d = re.findall(r"\);\s+default: (.*?);[ \t]*$", chunk, re.M | re.S)
        value = d[-1].strip() if d else ""
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        flags[m.group(1)] = value
    return flags


def split_flag(token):
    body = token.lstrip("-")
    if "=" in body:
        name, value = body.split("=", 1)
        return name, value
    return body, None


def flagfile_lines(text, where, error):
    """The flags of an Abseil flag file; reports lines Abseil would reject."""
    result = []
    for n, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("-"):
            error(f"{where} line {n}", f"{line!r}: a flag-file line must be --flag=value or a "
                  "# comment")
            continue
        result.append(line)
    return result


def port_of(address):
    m = re.search(r":(\d+)$", str(address))
    return int(m.group(1)) if m else None


def split_host_port(address):
    host, _, port = address.rpartition(":")
    return (host, int(port)) if port.isdigit() else (address, None)


def parse_duration(text):
    """Seconds in an Abseil/Go/compose duration ('10s', '1m30s', '168h', '500ms')."""
    text = str(text).strip()
    if text == "0":
        return 0.0
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        return None
    return sum(float(a) * units[b] for a, b in parts)


def shell_split(text):
    try:
        return shlex.split(text, comments=False)
    except ValueError:
        return text.split()


def docker_argv(args):
    args = args.strip()
    if args.startswith("["):
        import json
        return json.loads(args)
    return shell_split(args)


def parse_dockerfile(text):
    """[{'from': ..., 'instructions': [(line, INSTRUCTION, args)]}] with continuations joined."""
    stages = []
    logical, start = "", 0
    for n, line in enumerate(text.split("\n"), start=1):
        if not logical and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if logical and line.lstrip().startswith("#"):
            continue
        if not logical:
            start = n
        if line.rstrip().endswith("\\"):
            logical += line.rstrip()[:-1] + " "
            continue
        logical += line
        m = re.match(r"\s*([A-Za-z]+)\s*(.*)$", logical, re.S)
        logical = ""
        if not m:
            continue
        instr, args = m.group(1).upper(), m.group(2).strip()
        if instr == "FROM":
            stages.append({"from": args, "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((start, instr, args))
    return stages


def apt_packages(run_args):
    """Packages named by `apt-get install` / `apt install` commands in a RUN instruction."""
    tokens = shell_split(run_args)
    result = []
    for i, token in enumerate(tokens):
        if token not in ("apt-get", "apt"):
            continue
        j = i + 1
        while j < len(tokens) and tokens[j].startswith("-"):
            j += 2 if tokens[j] in ("-o", "-t", "-c") else 1
        if j >= len(tokens) or tokens[j] != "install":
            continue
        j += 1
        while j < len(tokens) and tokens[j] not in ("&&", "||", ";", "|"):
            if tokens[j] in ("-o", "-t", "-c"):
                j += 2
                continue
            if not tokens[j].startswith("-"):
                result.append(tokens[j])
            j += 1
    return result


def dpkg_owners(paths):
    """{path: Debian package owning it}, with one `dpkg -S` call (paths are tried as given,
    resolved, and with/without the /usr prefix of a merged-/usr system)."""
    candidates = {}
    for path in set(paths):
        for p in {path, os.path.realpath(path)}:
            for c in (p, p[4:] if p.startswith("/usr/") else "/usr" + p):
                candidates.setdefault(c, set()).add(path)
    if not candidates:
        return {}
    result = subprocess.run(["dpkg", "-S"] + sorted(candidates), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    owners = {}
    for line in result.stdout.splitlines():
        if ": " not in line:
            continue
        package, found = line.split(": ", 1)
        for path in candidates.get(found.strip(), ()):
            owners.setdefault(path, package.split(":")[0].strip())
    return owners


def image_repository(image):
    name = image.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":")[0]


def compose_mounts(svc, base):
    """{container path: host path or None for a named volume}."""
    mounts = {}
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            source, target = v.get("source"), v.get("target")
            bind = v.get("type") == "bind"
        else:
            parts = str(v).split(":")
            if len(parts) == 1:
                continue
            source, target = parts[0], parts[1]
            bind = source.startswith((".", "/", "~"))
        mounts[os.path.normpath(target)] = os.path.normpath(os.path.join(base, source)) \
            if bind else None
    return mounts


def compose_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return dict(str(e).split("=", 1) if "=" in str(e) else (str(e), "") for e in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def compose_container_port(spec):
    if isinstance(spec, dict):
        return spec.get("target")
    text = str(spec).split("/")[0]
    last = text.rsplit(":", 1)[-1]
    return int(last) if last.isdigit() else None


def dsn_host(dsn):
    m = re.match(r"postgres(?:ql)?://(?:[^@/]*@)?([^:/?]+)", dsn)
    return m.group(1) if m else None


def namespace_of(obj):
    return (obj.get("metadata") or {}).get("namespace") or "default"


def pod_template(obj):
    spec = obj.get("spec") or {}
    if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return spec.get("template")
    if obj["kind"] == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    if obj["kind"] == "Pod":
        return obj
    return None


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def resolve_container_port(container, target):
    for port in container.get("ports") or []:
        if target == port.get("name") or target == port.get("containerPort"):
            return port.get("containerPort")
    return target if isinstance(target, int) and not container.get("ports") else None


def object_keys(obj):
    return set((obj.get("data") or {}).keys()) | set((obj.get("stringData") or {}).keys())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--cli", required=True)
    parser.add_argument("--server_help", required=True, help="file with order_platform --helpfull")
    parser.add_argument("--cli_help", required=True, help="file with order_platform_cli --helpfull")
    args = parser.parse_args()
    checker = Checker(os.path.abspath(args.repo), args.server, args.cli, read(args.server_help),
                      read(args.cli_help))
    checker.run()
    print(f"order_platform flags: {' '.join('--' + f for f in sorted(checker.server_flags))}")
    print(f"health services: " + ", ".join(
        f"{s}: {sorted(n)}" for s, n in sorted(checker.health_names.items())))
    for what, n in sorted(checker.counts.items()):
        print(f"checked {n} {what}")
    for note in checker.notes:
        print(f"note: {note}")
    if checker.errors:
        print(f"\nFAIL: {len(checker.errors)} problem(s) in the deployment files:", file=sys.stderr)
        for e in checker.errors:
            print(f"  - {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
