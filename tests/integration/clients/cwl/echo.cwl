cwlVersion: v1.0
class: CommandLineTool
hints:
  DockerRequirement:
    dockerPull: localhost/ktes-test/busybox:1
baseCommand: echo
inputs:
  message:
    type: string
    inputBinding: {position: 1}
outputs:
  said: stdout
stdout: said.txt
