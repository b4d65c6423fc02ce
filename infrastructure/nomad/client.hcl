# Nomad client agent configuration for the Data Refinery workers.
#
# Installed as /etc/nomad.d/10-client.hcl by the Terraform user data
# (infrastructure/terraform/templates/client-user-data.sh.tftpl), which also
# writes /etc/nomad.d/90-cluster.hcl with the datacenter, region and the
# server addresses (client { server_join { retry_join } }), creates the
# host volume's folder and writes /etc/docker/nomad-auth.json.
# Nomad merges every .hcl and .json file in /etc/nomad.d in lexicographical
# order, so nothing else may be kept there under those suffixes.

data_dir  = "/opt/nomad/data"
bind_addr = "0.0.0.0"
log_level = "INFO"

# Autoscaling scale-in terminates instances: leave the cluster cleanly.
leave_on_terminate = true

client {
  enabled = true

  # Scratch space for job directories. Job specifications mount it with
  #   volume "refinery-data" { type = "host", source = "refinery-data" }
  # The folder is owned by uid/gid 10001, the "refinery" user of the images.
  host_volume "refinery-data" {
    path      = "/opt/refinery-data"
    read_only = false
  }

  # Keep some of the machine for the OS, Docker and the Nomad agent.
  reserved {
    cpu    = 500
    memory = 1024
  }
}

acl {
  enabled = true
}

plugin "docker" {
  config {
    # Registry credentials: a dockercfg-format file. The user data writes a
    # "credHelpers" entry that sends the refinery's ECR registry to
    # docker-credential-ecr-login; other registries are pulled anonymously.
    auth {
      config = "/etc/docker/nomad-auth.json"
    }

    volumes {
      enabled = true
    }

    allow_privileged = false

    # Worker images are large; keep an unused image for a while so that the
    # next job of the same kind does not pull it again.
    pull_activity_timeout = "5m"
    gc {
      image       = true
      image_delay = "3h"
      container   = true
    }

    extra_labels = ["job_name", "task_group_name", "task_name"]
  }
}

# Every refinery task runs in a container; nothing runs on the host.
plugin "raw_exec" {
  config {
    enabled = false
  }
}
