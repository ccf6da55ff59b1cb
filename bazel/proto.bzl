"""cc_grpc_proto_library: C++ (+gRPC) codegen with the system /usr/bin/protoc and grpc_cpp_plugin.

Usage (in proto/order_platform/orders/v1/BUILD.bazel):

    load("//bazel:proto.bzl", "cc_grpc_proto_library")

    cc_grpc_proto_library(
        name = "orders_proto",
        srcs = ["orders.proto"],
        deps = ["//proto/order_platform/common/v1:money_proto"],
    )

Targets created for name = N:
    N          cc_library; #include "order_platform/orders/v1/orders.pb.h" / "....grpc.pb.h"
    N_codegen  genrule running protoc (outputs X.pb.{h,cc} [+ X.grpc.pb.{h,cc}] per src)
    N_protos   filegroup of srcs + transitive deps' .proto files (protoc inputs)

Import paths are relative to `proto_root` (default "proto", repo-relative), so the BUILD
file must live under it. google/protobuf/*.proto come from /usr/include (libprotobuf-dev).
`deps` must be other cc_grpc_proto_library targets.
"""

_PROTOC = "/usr/bin/protoc"
_GRPC_PLUGIN = "/usr/bin/grpc_cpp_plugin"

def _protos_label(dep):
    """Maps a cc_grpc_proto_library label to its N_protos filegroup label."""
    if ":" in dep:
        return dep + "_protos"
    return dep + ":" + dep.rsplit("/", 1)[-1] + "_protos"

def cc_grpc_proto_library(name, srcs, deps = [], grpc = True, proto_root = "proto", visibility = None, **kwargs):
    pkg = native.package_name()
    if pkg != proto_root and not pkg.startswith(proto_root + "/"):
        fail("cc_grpc_proto_library must be used below %s/ (package is %s)" % (proto_root, pkg))

    # Execroot-relative path of the proto root (external repos live under external/<name>/).
    repo = native.repository_name().lstrip("@")
    root = ("external/%s/" % repo if repo else "") + proto_root

    stems = []
    for src in srcs:
        if not src.endswith(".proto") or "/" in src:
            fail("srcs must be .proto files in this package: " + src)
        stems.append(src[:-len(".proto")])

    hdrs = [s + ".pb.h" for s in stems]
    cc_srcs = [s + ".pb.cc" for s in stems]
    plugin_args = ""
    if grpc:
        hdrs += [s + ".grpc.pb.h" for s in stems]
        cc_srcs += [s + ".grpc.pb.cc" for s in stems]
        plugin_args = " --plugin=protoc-gen-grpc=%s --grpc_out=$(GENDIR)/%s" % (_GRPC_PLUGIN, root)

    native.filegroup(
        name = name + "_protos",
        srcs = srcs + [_protos_label(d) for d in deps],
        visibility = ["//visibility:public"],
    )

    native.genrule(
        name = name + "_codegen",
        srcs = srcs + [name + "_protos"],
        outs = hdrs + cc_srcs,
        cmd = " ".join([
            _PROTOC,
            "-I" + root,
            "-I/usr/include",
            "--cpp_out=$(GENDIR)/" + root,
            plugin_args,
        ] + ["$(location %s)" % s for s in srcs]),
        message = "protoc %s" % name,
        visibility = ["//visibility:private"],
    )

    third_party = ["//bazel/third_party:protobuf"]
    if grpc:
        third_party.append("//bazel/third_party:grpc++")
    native.cc_library(
        name = name,
        srcs = cc_srcs,
        hdrs = hdrs,
        strip_include_prefix = "/" + proto_root,
        deps = deps + [Label(l) for l in third_party],
        visibility = visibility,
        **kwargs
    )
