# Nomad ACL policy for the Data Refinery's own token (NOMAD_TOKEN where
# `manage.py nomad register` runs, and for operators' one-off commands). The
# tasks never get this token: they call Nomad with their workload identity
# (see refinery-task-acl-policy.hcl). Apply it with
#   nomad acl policy apply -description "Data Refinery" refinery refinery-acl-policy.hcl
#   nomad acl token create -name refinery -type client -policy refinery

namespace "default" {
  # read: list-jobs, read-job (jobs, summaries, allocations, evaluations).
  policy = "read"

  # register/deregister the REFINERY_* jobs, dispatch them, read allocation logs.
  capabilities = ["submit-job", "dispatch-job", "read-logs"]

  # `register` writes each job's secrets to its variable nomad/jobs/<job ID>.
  variables {
    path "nomad/jobs/REFINERY_*" {
      capabilities = ["write", "read", "list"]
    }
  }
}

# Capacity: GET /v1/nodes?resources=true.
node {
  policy = "read"
}
