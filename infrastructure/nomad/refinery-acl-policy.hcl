# Nomad ACL policy for the Data Refinery's own token (NOMAD_TOKEN of the
# app: `manage.py nomad register`, the dispatcher in every worker, the
# Foreman). Apply it with
#   nomad acl policy apply -description "Data Refinery" refinery refinery-acl-policy.hcl
#   nomad acl token create -name refinery -type client -policy refinery

namespace "default" {
  # read: list-jobs, read-job (jobs, summaries, allocations, evaluations).
  policy = "read"

  # register/deregister the REFINERY_* parameterized jobs, dispatch them,
  # read allocation logs.
  capabilities = ["submit-job", "dispatch-job", "read-logs"]
}

# Capacity: GET /v1/nodes?resources=true.
node {
  policy = "read"
}
