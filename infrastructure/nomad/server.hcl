# Nomad server agent configuration for the Data Refinery cluster.
#
# Installed as /etc/nomad.d/10-server.hcl by the Terraform user data
# (infrastructure/terraform/templates/server-user-data.sh.tftpl), which also
# writes /etc/nomad.d/90-cluster.hcl with the datacenter, region and the
# addresses of the other servers (server { server_join { retry_join } }).
# Nomad merges every .hcl and .json file in /etc/nomad.d in lexicographical
# order.

data_dir  = "/opt/nomad/data"
bind_addr = "0.0.0.0"
log_level = "INFO"

server {
  enabled          = true
  bootstrap_expect = 3

  # Garbage collection. Every refinery job is a dispatched child of a
  # parameterized batch job, so dead children pile up fast. The Foreman
  # reads a child's status within seconds of it ending and treats a 404
  # for an old dispatch as "gone", so a few hours of history is plenty;
  # the job rows in PostgreSQL are the permanent record.
  job_gc_interval         = "5m"
  job_gc_threshold        = "6h"
  eval_gc_threshold       = "1h"
  batch_eval_gc_threshold = "6h"
  deployment_gc_threshold = "1h"
  node_gc_threshold       = "12h"
}

acl {
  enabled = true
}
