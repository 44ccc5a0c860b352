"""Multi-process JAX: one process per TPU VM worker, per GPU (SLURM), or N on one machine.

JAX's multi-controller runtime runs the same program in every process; the processes find
each other through `jax.distributed.initialize`, which must run before any JAX computation.
On a Cloud TPU VM and inside a SLURM step it finds the coordinator, the process count and
this process's id by itself; elsewhere they come from flags or the environment
(`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`). One plain process runs
without it.
"""

import glob
import importlib.util
import os
from collections.abc import Mapping

import jax
from absl import logging

from rsrl_jax import errors

MODES = ("auto", "on", "off")


def _int_or_none(value, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.ConfigError(f"{name}={value!r}: must be an integer") from None


def _on_cloud_tpu_vm() -> bool:
    """libtpu installed and TPU chips attached: JAX reads the pod's layout from the VM."""
    chips = glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*")
    return bool(chips) and importlib.util.find_spec("libtpu") is not None


def settings(
    mode: str = "auto",
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    environ: Mapping[str, str] | None = None,
    on_tpu_vm: bool | None = None,
) -> dict | None:
    """The keyword arguments of `jax.distributed.initialize`, or None to run as one process.

    `mode`: `off` never initializes; `on` always does (arguments not given are detected by
    JAX); `auto` does when a coordinator or a process count above 1 is given (flags or the
    `JAX_*` variables), inside a SLURM step of several tasks, or on a Cloud TPU VM.
    """
    if mode not in MODES:
        raise errors.ConfigError(f"--distributed={mode!r}: must be one of {MODES}")
    env = os.environ if environ is None else environ
    coordinator_address = coordinator_address or env.get("JAX_COORDINATOR_ADDRESS") or None
    if num_processes is None:
        num_processes = _int_or_none(env.get("JAX_NUM_PROCESSES"), "JAX_NUM_PROCESSES")
    if process_id is None:
        process_id = _int_or_none(env.get("JAX_PROCESS_ID"), "JAX_PROCESS_ID")
    if num_processes is not None and num_processes < 1:
        raise errors.ConfigError(f"--num_processes={num_processes}: must be at least 1")
    if process_id is not None and num_processes is not None:
        if not 0 <= process_id < num_processes:
            raise errors.ConfigError(
                f"--process_id={process_id}: must be in [0, --num_processes={num_processes})"
            )
    if mode == "off":
        return None
    explicit = coordinator_address is not None or (num_processes or 1) > 1
    slurm_step = "SLURM_STEP_NODELIST" in env and int(env.get("SLURM_NTASKS", "1")) > 1
    if on_tpu_vm is None:
        on_tpu_vm = _on_cloud_tpu_vm()
    if mode == "auto" and not (explicit or slurm_step or on_tpu_vm):
        return None
    if not slurm_step and not on_tpu_vm:
        missing = [
            flag
            for flag, value in (
                ("--coordinator_address", coordinator_address),
                ("--num_processes", num_processes),
                ("--process_id", process_id),
            )
            if value is None
        ]
        if missing:
            raise errors.ConfigError(
                f"several processes need {', '.join(missing)} too (or JAX_COORDINATOR_ADDRESS, "
                "JAX_NUM_PROCESSES, JAX_PROCESS_ID): outside SLURM and Cloud TPU VMs JAX "
                "cannot detect them"
            )
    return {
        "coordinator_address": coordinator_address,
        "num_processes": num_processes,
        "process_id": process_id,
    }


def initialize(
    mode: str = "auto",
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Joins the processes of a multi-process run (see `settings`); True if it did.

    Changes no logging setting: the command decides what processes other than 0 log.
    """
    kwargs = settings(mode, coordinator_address, num_processes, process_id)
    if kwargs is None:
        return False
    jax.distributed.initialize(**kwargs)
    logging.info(
        "process %d of %d; %d local and %d global device(s)",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )
    return True
