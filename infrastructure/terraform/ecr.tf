# One repository per image built by docker/build.sh.
resource "aws_ecr_repository" "refinery" {
  for_each = var.create_ecr_repositories ? toset(local.image_names) : toset([])

  name                 = "refinery-${each.key}"
  image_tag_mutability = "MUTABLE"
  force_delete         = true # images are rebuilt from the repository

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }
}

resource "aws_ecr_lifecycle_policy" "refinery" {
  for_each = aws_ecr_repository.refinery

  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Drop untagged images after 14 days"
      selection = {
        tagStatus   = "untagged"
        countType   = "sinceImagePushed"
        countUnit   = "days"
        countNumber = 14
      }
      action = { type = "expire" }
    }]
  })
}
