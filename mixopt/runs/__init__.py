"""Run records and the run store, sweep planning, the claim → train → put step, and the executors that schedule it.

``record`` (RunSpec, RunRecord) → ``store`` (RunStore, StoreSnapshot) → ``sweep`` (plan_sweep, execute_runs) →
``executors`` (local, processes, Ray) → ``driver`` (run_sweep). ``table`` turns records into arrays.
"""
