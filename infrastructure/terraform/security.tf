# Security groups. Nomad's ports: 4646 HTTP API, 4647 RPC, 4648 Serf gossip
# (TCP and UDP, servers only). None of them is open outside the VPC.

resource "aws_security_group" "nomad_server" {
  name        = "${var.name}-nomad-server"
  description = "Nomad servers of ${var.name}"
  vpc_id      = aws_vpc.main.id

  tags = {
    Name = "${var.name}-nomad-server"
  }
}

resource "aws_security_group" "nomad_client" {
  name        = "${var.name}-nomad-client"
  description = "Nomad clients (workers) of ${var.name}"
  vpc_id      = aws_vpc.main.id

  tags = {
    Name = "${var.name}-nomad-client"
  }
}

resource "aws_security_group" "ops" {
  name        = "${var.name}-ops"
  description = "Ops host of ${var.name}"
  vpc_id      = aws_vpc.main.id

  tags = {
    Name = "${var.name}-ops"
  }
}

resource "aws_security_group" "db" {
  name        = "${var.name}-db"
  description = "PostgreSQL of ${var.name}"
  vpc_id      = aws_vpc.main.id

  tags = {
    Name = "${var.name}-db"
  }
}

# --- Nomad servers ----------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "server_from_server_tcp" {
  security_group_id            = aws_security_group.nomad_server.id
  referenced_security_group_id = aws_security_group.nomad_server.id
  ip_protocol                  = "tcp"
  from_port                    = 4646
  to_port                      = 4648
  description                  = "Nomad HTTP, RPC and Serf between servers"
}

resource "aws_vpc_security_group_ingress_rule" "server_from_server_serf_udp" {
  security_group_id            = aws_security_group.nomad_server.id
  referenced_security_group_id = aws_security_group.nomad_server.id
  ip_protocol                  = "udp"
  from_port                    = 4648
  to_port                      = 4648
  description                  = "Nomad Serf gossip between servers"
}

resource "aws_vpc_security_group_ingress_rule" "server_from_client" {
  security_group_id            = aws_security_group.nomad_server.id
  referenced_security_group_id = aws_security_group.nomad_client.id
  ip_protocol                  = "tcp"
  from_port                    = 4646
  to_port                      = 4647
  description                  = "Nomad HTTP API (tasks dispatch jobs) and RPC from clients"
}

resource "aws_vpc_security_group_ingress_rule" "server_from_ops" {
  security_group_id            = aws_security_group.nomad_server.id
  referenced_security_group_id = aws_security_group.ops.id
  ip_protocol                  = "tcp"
  from_port                    = 4646
  to_port                      = 4646
  description                  = "Nomad HTTP API from the ops host"
}

resource "aws_vpc_security_group_ingress_rule" "server_ssh_from_ops" {
  security_group_id            = aws_security_group.nomad_server.id
  referenced_security_group_id = aws_security_group.ops.id
  ip_protocol                  = "tcp"
  from_port                    = 22
  to_port                      = 22
  description                  = "SSH from the ops host"
}

# --- Nomad clients ----------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "client_from_server" {
  security_group_id            = aws_security_group.nomad_client.id
  referenced_security_group_id = aws_security_group.nomad_server.id
  ip_protocol                  = "tcp"
  from_port                    = 4646
  to_port                      = 4647
  description                  = "Nomad HTTP and RPC from servers"
}

resource "aws_vpc_security_group_ingress_rule" "client_http_from_ops" {
  security_group_id            = aws_security_group.nomad_client.id
  referenced_security_group_id = aws_security_group.ops.id
  ip_protocol                  = "tcp"
  from_port                    = 4646
  to_port                      = 4646
  description                  = "Nomad HTTP API (alloc logs) from the ops host"
}

resource "aws_vpc_security_group_ingress_rule" "client_ssh_from_ops" {
  security_group_id            = aws_security_group.nomad_client.id
  referenced_security_group_id = aws_security_group.ops.id
  ip_protocol                  = "tcp"
  from_port                    = 22
  to_port                      = 22
  description                  = "SSH from the ops host"
}

# --- Ops host ---------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "ops_ssh" {
  for_each = toset(var.admin_cidr_blocks)

  security_group_id = aws_security_group.ops.id
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  description       = "SSH from an administrator"
}

# --- PostgreSQL: only from the machines that run refinery code --------------

resource "aws_vpc_security_group_ingress_rule" "db_from_client" {
  security_group_id            = aws_security_group.db.id
  referenced_security_group_id = aws_security_group.nomad_client.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "PostgreSQL from Nomad clients"
}

resource "aws_vpc_security_group_ingress_rule" "db_from_ops" {
  security_group_id            = aws_security_group.db.id
  referenced_security_group_id = aws_security_group.ops.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "PostgreSQL from the ops host (migrations, Foreman)"
}

# --- Outbound: everything (packages, images, public archives, AWS APIs) -----

resource "aws_vpc_security_group_egress_rule" "all" {
  for_each = {
    nomad_server = aws_security_group.nomad_server.id
    nomad_client = aws_security_group.nomad_client.id
    ops          = aws_security_group.ops.id
  }

  security_group_id = each.value
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
  description       = "All outbound traffic"
}
