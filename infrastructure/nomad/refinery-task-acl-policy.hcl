# Nomad ACL policy for the Data Refinery's tasks, attached to each REFINERY_* job:
# a task calls Nomad with its workload identity (NOMAD_TOKEN, from the job's
# `identity { env = true }`), never with an operator's token. The Foreman
# dispatches, watches and stops jobs and reads their logs (why a task died) and
# the nodes (capacity); the other tasks dispatch the jobs they create. Attach it
# to every job `manage.py nomad register` registered:
#   for job in $(nomad job status | awk '$1 ~ /^REFINERY_/ && $1 !~ /\// {print $1}'); do
#     nomad acl policy apply -namespace default -job "$job" \
#       -description "Data Refinery task" "refinery-task-$job" refinery-task-acl-policy.hcl
#   done
# A task reads its own job's variable (its secrets) without this policy: Nomad
# allows every workload to read nomad/jobs/<its job>.

namespace "default" {
  policy       = "read"
  capabilities = ["submit-job", "dispatch-job", "read-logs"]
}

node {
  policy = "read"
}
