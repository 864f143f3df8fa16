output "public_ip" {
  description = "Public IPv4 address of the trainer."
  value       = aws_instance.trainer.public_ip
}

output "ssh_command" {
  description = "ssh into the trainer (assumes the key pair's private key is ~/.ssh/<key_name>.pem)."
  value       = "ssh -i ${local.ssh_key_file} ${local.ssh_user}@${aws_instance.trainer.public_ip}"
}

output "jupyter_tunnel_command" {
  description = "Forward localhost:8888 to Jupyter on the trainer; then open the URL printed in ~/fcn-setup.log."
  value       = "ssh -i ${local.ssh_key_file} -N -L 8888:127.0.0.1:8888 ${local.ssh_user}@${aws_instance.trainer.public_ip}"
}

output "ami_id" {
  description = "Deep Learning AMI the trainer was launched from."
  value       = data.aws_ami.dlami.id
}

output "security_group_id" {
  description = "Security group guarding the trainer."
  value       = aws_security_group.trainer.id
}
