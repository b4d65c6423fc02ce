# The ops host: the only machine reachable from outside (SSH from
# admin_cidr_blocks). It carries the nomad CLI, Docker and psql, runs
# one-off manage.py commands (migrate, nomad register, survey) and the
# Foreman, with the same instance role as the workers.

locals {
  refinery_env = join("\n", [
    "# Settings of the Data Refinery on this cluster, in docker --env-file form",
    "# (KEY=VALUE, no quotes). Replace every CHANGE_ME before use.",
    "DJANGO_SETTINGS_MODULE=refinery.settings_production",
    "DJANGO_SECRET_KEY=CHANGE_ME",
    "DATABASE_URL=postgres://${var.db_username}:CHANGE_ME@${aws_db_instance.main.address}:${aws_db_instance.main.port}/${var.db_name}",
    "REFINERY_TEMP_STORAGE=${local.temp_storage_url}",
    "REFINERY_PERMANENT_STORAGE=${local.permanent_storage_url}",
    "AWS_DEFAULT_REGION=${var.aws_region}",
    "REFINERY_DISPATCHER=nomad",
    "NOMAD_ADDR=${local.nomad_addr}",
    "NOMAD_TOKEN=CHANGE_ME",
  ])
}

resource "aws_instance" "ops" {
  ami                    = data.aws_ami.ubuntu.id
  instance_type          = var.ops_instance_type
  key_name               = var.ssh_key_name
  subnet_id              = aws_subnet.public[0].id
  vpc_security_group_ids = [aws_security_group.ops.id]
  iam_instance_profile   = aws_iam_instance_profile.worker.name

  user_data = templatefile("${path.module}/templates/ops-user-data.sh.tftpl", {
    install_nomad    = local.install_nomad
    docker_auth_json = local.docker_auth_json
    refinery_env     = local.refinery_env
    nomad_addr       = local.nomad_addr
  })

  root_block_device {
    volume_type = "gp3"
    volume_size = 40
    encrypted   = true
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  tags = {
    Name = "${var.name}-ops"
    Role = "ops"
  }

  lifecycle {
    ignore_changes = [ami, user_data]
  }
}
