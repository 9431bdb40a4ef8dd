"""Networks: the factorized 3D U-Net and the attention function it is built on."""
from vidiff.models.attention import attention
from vidiff.models.unet3d import UNet3D, UNet3DConfig

__all__ = ["UNet3D", "UNet3DConfig", "attention"]
