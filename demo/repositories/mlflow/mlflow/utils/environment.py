import subprocess


def install_model_dependencies(requirements):
    cmd = "pip install " + " ".join(requirements)
    subprocess.run(cmd, shell=True, check=True)
