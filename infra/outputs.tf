output "public_ips" {
  description = "Public IPv4 address of each node, in node order (node 0 is the chief)."
  value       = aws_instance.trainer[*].public_ip
}

output "private_ips" {
  description = "Private IPv4 address of each node, in node order; the nodes reach each other on these."
  value       = aws_instance.trainer[*].private_ip
}

output "ssh_commands" {
  description = "ssh into each node, in node order (assumes the key pair's private key is ~/.ssh/<key_name>.pem)."
  value       = [for node in aws_instance.trainer : "ssh -i ${local.ssh_key_file} ${local.ssh_user}@${node.public_ip}"]
}

output "jupyter_tunnel_command" {
  description = "Forward localhost:8888 to Jupyter on node 0; then open the URL printed in its ~/fcn-setup.log."
  value       = "ssh -i ${local.ssh_key_file} -N -L 8888:127.0.0.1:8888 ${local.ssh_user}@${aws_instance.trainer[0].public_ip}"
}

output "tf_configs" {
  description = "TF_CONFIG (JSON) of each node, in node order; null with a single node, which needs none."
  value       = local.multi_node ? local.tf_configs : null
}

output "start_commands" {
  description = "Training command to run over ssh on each node, in node order: cd to the project, TF_CONFIG (several nodes only), the venv's python main.py train_args."
  value       = local.start_commands
}

output "ami_id" {
  description = "Deep Learning AMI the nodes were launched from."
  value       = data.aws_ami.dlami.id
}

output "security_group_id" {
  description = "Security group guarding the nodes."
  value       = aws_security_group.trainer.id
}

output "placement_group" {
  description = "Cluster placement group holding the nodes; null with a single node."
  value       = local.multi_node ? aws_placement_group.trainer[0].name : null
}
