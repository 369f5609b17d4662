#!/bin/sh
# The Ray head and the lab's worker loop in one container (the worker loop is a Ray driver,
# and a driver needs a raylet on its own machine), supervised so that neither takes the
# other down: the worker loop is restarted whenever it exits; the container ends (and its
# restart policy starts it again) only when the Ray head's processes end, or on SIGTERM.
# Run under an init (compose `init: true`), so that orphans are reaped.
set -u
delay="${VRADAM_LAB_RESTART_DELAY_S:-5}"
stopping=0
worker=""

ray start --head --port=6379 --num-gpus=0 --include-dashboard=false \
    --disable-usage-stats --block &
head=$!

stop() {
    stopping=1
    [ -n "$worker" ] && kill -TERM "$worker" 2>/dev/null
    kill -TERM "$head" 2>/dev/null
}
trap stop TERM INT

# The head's GCS must answer before the worker loop connects.
until ray health-check --address "127.0.0.1:6379" >/dev/null 2>&1; do
    kill -0 "$head" 2>/dev/null || { wait "$head"; exit $?; }
    sleep 1
done

# If the head dies, stop the worker loop too, so that the container restarts whole.
( while kill -0 "$head" 2>/dev/null; do sleep 1; done; [ "$stopping" = 1 ] || kill -TERM $$ ) &

while [ "$stopping" = 0 ] && kill -0 "$head" 2>/dev/null; do
    vradam-hpo worker &
    worker=$!
    wait "$worker"
    code=$?
    worker=""
    [ "$stopping" = 1 ] && break
    echo "ray-head.sh: the worker loop exited with $code; restarting it in $delay s" >&2
    sleep "$delay"
done
wait "$head"
