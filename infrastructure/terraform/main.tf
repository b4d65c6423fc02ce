data "aws_caller_identity" "current" {}

data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

# Ubuntu 24.04 LTS for the Nomad servers, the CPU clients and the ops host.
data "aws_ami" "ubuntu" {
  most_recent = true
  owners      = ["099720109477"] # Canonical

  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

locals {
  azs          = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  subnet_cidrs = [for i in range(var.az_count) : cidrsubnet(var.vpc_cidr, 4, i)]

  # The three Nomad servers have fixed private addresses, so that servers and
  # clients can join them by address without any discovery permissions.
  # Each server's address lies in an "explicit" subnet CIDR reservation
  # (the second /28 of its subnet), which AWS never hands out on its own.
  server_count             = 3
  server_subnet_index      = [for i in range(local.server_count) : i % var.az_count]
  server_reservation_cidrs = [for i in range(var.az_count) : cidrsubnet(local.subnet_cidrs[i], 8, 1)]
  server_ips = [
    for i in range(local.server_count) :
    cidrhost(local.server_reservation_cidrs[local.server_subnet_index[i]], 4 + floor(i / var.az_count))
  ]

  nomad_addr = "http://${local.server_ips[0]}:4646"

  ecr_registry = "${data.aws_caller_identity.current.account_id}.dkr.ecr.${var.aws_region}.amazonaws.com"
  # Images built by docker/build.sh: <registry>/refinery-<image>:<tag>.
  image_names = ["base", "downloaders", "transcriptome", "foreman"]

  temp_storage_url      = "s3://${aws_s3_bucket.temp.bucket}/${var.storage_prefix}"
  permanent_storage_url = "s3://${aws_s3_bucket.permanent.bucket}/${var.storage_prefix}"

  # Rendered once and embedded in every instance's user data.
  install_nomad = templatefile("${path.module}/templates/install-nomad.sh.tftpl", {
    nomad_version = var.nomad_version
  })

  # UID/GID of the "refinery" user in docker/base/Dockerfile; owns the
  # refinery-data host volume on the clients.
  refinery_uid = 10001
}
