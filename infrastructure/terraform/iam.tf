# Instance role of the Nomad clients and the ops host: the refinery's code
# runs there (in containers, which reach the instance credentials through
# IMDSv2 with a hop limit of 2). It may read and write objects in the two
# refinery buckets, list them, and pull the refinery images; nothing else.
# The Nomad servers have no instance role at all.

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "worker" {
  name               = "${var.name}-worker"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_instance_profile" "worker" {
  name = "${var.name}-worker"
  role = aws_iam_role.worker.name
}

data "aws_iam_policy_document" "worker_storage" {
  statement {
    sid = "RefineryObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [
      "${aws_s3_bucket.temp.arn}/*",
      "${aws_s3_bucket.permanent.arn}/*",
    ]
  }

  # Storage "lists a prefix" and checks existence (a HEAD of a missing key
  # answers 404 instead of 403 only with ListBucket).
  statement {
    sid = "RefineryListBuckets"
    actions = [
      "s3:ListBucket",
      "s3:ListBucketMultipartUploads",
    ]
    resources = [
      aws_s3_bucket.temp.arn,
      aws_s3_bucket.permanent.arn,
    ]
  }
}

resource "aws_iam_role_policy" "worker_storage" {
  name   = "refinery-storage"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker_storage.json
}

data "aws_iam_policy_document" "worker_images" {
  count = var.create_ecr_repositories ? 1 : 0

  # GetAuthorizationToken has no resource-level permissions.
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "EcrPullRefineryImages"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [for repo in aws_ecr_repository.refinery : repo.arn]
  }
}

resource "aws_iam_role_policy" "worker_images" {
  count = var.create_ecr_repositories ? 1 : 0

  name   = "refinery-images"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker_images[0].json
}
