cwlVersion: v1.0
class: CommandLineTool
hints:
  DockerRequirement:
    dockerPull: localhost/ktes-test/busybox:1
baseCommand: [busybox, wc, -l]  # through busybox: images built before wc was an applet link lack /bin/wc
inputs:
  text: File
outputs:
  lines: stdout
stdin: $(inputs.text.path)
stdout: lines.txt
