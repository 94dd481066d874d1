"""Slurm: site profiles (``profiles/*.toml``), job-script rendering, sbatch submission, requeue on preemption.

- ``profile``  — load and check a system's profile (local, generic, perlmutter, frontier, alps, juwels-booster);
- ``render``   — ``render_job_script(profile, JobRequest)``: a pure function from typed parameters to script text;
- ``pipeline`` — the simulate (array) → train → bench chain as job requests;
- ``submit``   — the only caller of ``sbatch --parsable``.

No torch is imported here (ARCHITECTURE.md): rendering a job script for a GPU cluster works on any login node.
"""

from hpcgen.slurm.profile import Profile, load_profile, profile_names
from hpcgen.slurm.render import JobRequest, render_job_script, resolve

__all__ = ["JobRequest", "Profile", "load_profile", "profile_names", "render_job_script", "resolve"]
