# Three Nomad servers at fixed private addresses (see local.server_ips).
resource "aws_instance" "nomad_server" {
  count = local.server_count

  ami                    = data.aws_ami.ubuntu.id
  instance_type          = var.server_instance_type
  key_name               = var.ssh_key_name
  subnet_id              = aws_subnet.public[local.server_subnet_index[count.index]].id
  private_ip             = local.server_ips[count.index]
  vpc_security_group_ids = [aws_security_group.nomad_server.id]

  user_data = templatefile("${path.module}/templates/server-user-data.sh.tftpl", {
    install_nomad = local.install_nomad
    server_hcl    = file("${path.module}/../nomad/server.hcl")
    datacenter    = var.nomad_datacenter
    region        = var.nomad_region
    server_ips    = local.server_ips
  })

  root_block_device {
    volume_type = "gp3"
    volume_size = 50
    encrypted   = true
  }

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  tags = {
    Name = "${var.name}-nomad-server-${count.index}"
    Role = "nomad-server"
  }

  # A newer AMI or a changed script must not replace a Raft member behind
  # the operator's back: replace servers one at a time, on purpose
  # (terraform apply -replace='aws_instance.nomad_server[0]').
  lifecycle {
    ignore_changes = [ami, user_data]
  }

  depends_on = [aws_ec2_subnet_cidr_reservation.nomad_servers]
}
