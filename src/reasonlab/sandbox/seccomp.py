"""The seccomp layer: a classic BPF program, assembled here so that no libseccomp is needed.

Denied syscalls fail with EOPNOTSUPP, an errno nothing else in the sandbox produces, so the runner can
name the layer. bubblewrap loads the program (`--seccomp FD`); otherwise (the unshare launcher, the unsafe
mode) the runner loads it with `prctl` after setting its rlimits.
"""

from __future__ import annotations

import errno
import platform
import struct
import sys

_BPF_LD_ABS, _BPF_JEQ, _BPF_JGE, _BPF_JSET, _BPF_RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_AUDIT_ARCH_X86_64 = 0xC000003E
_X86_64 = {"socket": 41, "clone": 56, "setrlimit": 160, "prlimit64": 302, "clone3": 435}
_X86_64_DENIED = (
    101, 155, 161, 165, 166,  # ptrace, pivot_root, chroot, mount, umount2
    57, 58, 175, 176, 313, 246, 320,  # fork, vfork, init/delete/finit_module, kexec_load, kexec_file_load
    248, 249, 250, 272, 308, 298, 321, 323,  # add_key, request_key, keyctl, unshare, setns, perf, bpf, uffd
    304, 310, 311, 425, 426, 427,  # open_by_handle_at, process_vm_readv/writev, io_uring_*
)


def seccomp_program(lock_rlimits: bool) -> bytes | None:
    """The filter (x86_64 only), or None where it is not built.

    clone is allowed only for threads (CLONE_THREAD); clone3 answers ENOSYS so glibc falls back to clone.
    With `lock_rlimits` (no namespace, where the child may be root) rlimits can no longer be raised.
    """
    if platform.machine() != "x86_64" or sys.maxsize < 2**63 - 1:
        return None
    nr = _X86_64
    code: list[tuple[int, int, str | None, str | None]] = [
        (_BPF_LD_ABS, 4, None, None), (_BPF_JEQ, _AUDIT_ARCH_X86_64, None, "deny"),
        (_BPF_LD_ABS, 0, None, None), (_BPF_JGE, 0x40000000, "deny", None),  # x32 syscalls
        (_BPF_JEQ, nr["clone"], "clone", None), (_BPF_JEQ, nr["clone3"], "enosys", None),
        (_BPF_JEQ, nr["socket"], "socket", None),
    ]
    if lock_rlimits:
        code += [(_BPF_JEQ, nr["setrlimit"], "deny", None), (_BPF_JEQ, nr["prlimit64"], "prlimit", None)]
    code += [(_BPF_JEQ, number, "deny", None) for number in _X86_64_DENIED]
    code += [(_BPF_RET, _RET_ALLOW, None, None)]
    labels = {
        "clone": [(_BPF_LD_ABS, 16, None, None), (_BPF_JSET, 0x00010000, "allow", "deny")],  # CLONE_THREAD
        "socket": [(_BPF_LD_ABS, 16, None, None), (_BPF_JEQ, 1, "allow", "deny")],  # AF_UNIX
        "prlimit": [(_BPF_LD_ABS, 32, None, None), (_BPF_JEQ, 0, None, "deny"),  # new_limit == NULL only
                    (_BPF_LD_ABS, 36, None, None), (_BPF_JEQ, 0, "allow", "deny")],
        "allow": [(_BPF_RET, _RET_ALLOW, None, None)],
        "deny": [(_BPF_RET, _RET_ERRNO | errno.EOPNOTSUPP, None, None)],
        "enosys": [(_BPF_RET, _RET_ERRNO | errno.ENOSYS, None, None)],
    }
    position: dict[str, int] = {}
    for label, block in labels.items():
        position[label] = len(code)
        code += block
    program = b""
    for index, (op, k, true, false) in enumerate(code):
        jt = position[true] - index - 1 if true else 0
        jf = position[false] - index - 1 if false else 0
        program += struct.pack("=HBBI", op, jt, jf, k)
    return program
