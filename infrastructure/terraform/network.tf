# One VPC with a public subnet per availability zone. Instances get public
# addresses for outbound traffic (apt, image pulls, the public archives)
# without a NAT gateway; inbound traffic is limited by the security groups
# (only SSH to the ops host from admin_cidr_blocks).

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = var.name
  }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id

  tags = {
    Name = var.name
  }
}

resource "aws_subnet" "public" {
  count = var.az_count

  vpc_id                  = aws_vpc.main.id
  cidr_block              = local.subnet_cidrs[count.index]
  availability_zone       = local.azs[count.index]
  map_public_ip_on_launch = true

  tags = {
    Name = "${var.name}-${local.azs[count.index]}"
  }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }

  tags = {
    Name = "${var.name}-public"
  }
}

resource "aws_route_table_association" "public" {
  count = var.az_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

# S3 traffic stays inside AWS (and costs no data transfer through the
# internet gateway).
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${var.aws_region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.public.id]

  tags = {
    Name = "${var.name}-s3"
  }
}

# Addresses reserved for the Nomad servers (see local.server_ips).
resource "aws_ec2_subnet_cidr_reservation" "nomad_servers" {
  count = var.az_count

  subnet_id        = aws_subnet.public[count.index].id
  cidr_block       = local.server_reservation_cidrs[count.index]
  reservation_type = "explicit"
  description      = "Nomad servers of ${var.name}"
}
