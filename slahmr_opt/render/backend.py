"""The OpenGL side of ``slahmr-opt render``: pyrender drawing offscreen through OSMesa.

pyrender is imported here only, and only when a renderer is made, so that ``slahmr-opt``
starts without it. With no display, pyrender needs ``PYOPENGL_PLATFORM``: it is set to
``osmesa`` (Mesa's CPU rasterizer, Debian package ``libosmesa6``) unless the user chose a
platform already (``egl`` uses a GPU where there is one).
"""

import os
from dataclasses import dataclass, field

import numpy as np

from slahmr_opt.errors import SlahmrOptError
from slahmr_opt.render.scene import Mesh

INSTALL_HINT = (
    "install the renderer: apt-get install libosmesa6; pip install 'slahmr-opt[render]'; "
    "pip install --no-deps pyrender==0.1.45 (pyrender pins PyOpenGL 3.1.0, which has no OSMesa "
    "context attributes; the Makefile does all three)"
)


class RendererUnavailableError(SlahmrOptError):
    """pyrender, PyOpenGL or the OSMesa library is missing or cannot make a context."""


def import_pyrender():
    """The ``pyrender`` module, with ``PYOPENGL_PLATFORM`` defaulting to ``osmesa``.

    Raises:
        RendererUnavailableError: with what to install.
    """
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    try:
        import pyrender
    except Exception as exc:  # without libOSMesa, PyOpenGL fails with an AttributeError
        platform = os.environ["PYOPENGL_PLATFORM"]
        raise RendererUnavailableError(
            f"cannot import pyrender with PYOPENGL_PLATFORM={platform} "
            f"({type(exc).__name__}: {exc}); {INSTALL_HINT}"
        ) from None
    return pyrender


def _stable_program_cache(pr):
    """A pyrender shader cache keyed by the shaders and defines only.

    pyrender keys its cache by the current context as PyOpenGL returns it; under OSMesa that is
    a new pointer object at each call, so every draw compiled (and kept) a new shader program:
    10% of the frame time and an unbounded leak on long videos. A renderer has one context, so
    the context is not needed in the key.
    """

    class StableProgramCache(pr.shader_program.ShaderProgramCache):
        def __init__(self):
            super().__init__()
            self._stable = {}

        def get_program(self, vertex_shader, fragment_shader, geometry_shader=None, defines=None):
            key = (vertex_shader, fragment_shader, geometry_shader,
                   tuple(sorted((defines or {}).items())))  # fmt: skip
            if key not in self._stable:
                self._stable[key] = super().get_program(
                    vertex_shader, fragment_shader, geometry_shader, defines
                )
            return self._stable[key]

        def clear(self):
            super().clear()
            self._stable = {}

    return StableProgramCache()


@dataclass
class Camera:
    """A pinhole camera for one render, in the OpenGL convention of the scene it looks at.

    Attributes:
        intrins: (4,) ``[fx, fy, cx, cy]`` in output pixels (``None`` for ``yfov``).
        yfov: vertical field of view in radians (used when ``intrins`` is None).
        pose: (4, 4) camera-to-scene transform, OpenGL axes (looks along -z).
    """

    intrins: np.ndarray | None = None
    yfov: float | None = None
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))


class Renderer:
    """Draws lists of :class:`Mesh` offscreen at one size; one OpenGL context per instance.

    A mesh made once with :meth:`mesh` and passed to several renders stays uploaded; a
    :class:`Mesh` is uploaded for one render only.
    """

    def __init__(self, width: int, height: int, ambient: float = 0.35):
        pr = import_pyrender()
        self._pr = pr
        self.width, self.height = int(width), int(height)
        try:
            self._gl = pr.OffscreenRenderer(self.width, self.height)
        except Exception as exc:  # PyOpenGL raises many kinds when a library is missing
            platform = os.environ.get("PYOPENGL_PLATFORM")
            raise RendererUnavailableError(
                f"cannot create an offscreen OpenGL context with PYOPENGL_PLATFORM={platform} "
                f"({type(exc).__name__}: {exc}); {INSTALL_HINT}"
            ) from None
        self._gl._renderer._program_cache = _stable_program_cache(pr)
        self._ambient = ambient
        self._material = pr.MetallicRoughnessMaterial(
            metallicFactor=0.0, roughnessFactor=0.75, baseColorFactor=(1.0, 1.0, 1.0, 1.0)
        )

    def mesh(self, mesh: Mesh):
        """A renderer-side copy of ``mesh`` to pass to :meth:`render` as a static mesh."""
        pr = self._pr
        colors = np.concatenate([mesh.colors, np.ones((len(mesh.colors), 1), np.float32)], 1)
        prim = pr.Primitive(
            positions=mesh.vertices,
            normals=mesh.normals,
            indices=mesh.faces,
            color_0=colors,
            material=self._material,
        )
        return pr.Mesh([prim])

    def render(
        self,
        meshes: list,
        camera: Camera,
        background: tuple[float, float, float] = (1.0, 1.0, 1.0),
        lights: list[tuple[np.ndarray, float]] = (),
        cull_faces: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``meshes`` (:class:`Mesh`, or objects from :meth:`mesh`) seen by ``camera``.

        Args:
            lights: ``(pose (4, 4), intensity)`` of white directional lights shining along
                their pose's -z; none means one light at the camera.
            cull_faces: False draws both sides of every triangle (open tubes, floors).

        Returns:
            ``(rgb (H, W, 3) uint8, depth (H, W) float32)``: depth is the distance along the
            viewing axis in scene units, 0 where nothing was drawn.
        """
        pr = self._pr
        scene = pr.Scene(bg_color=(*background, 0.0), ambient_light=(self._ambient,) * 3)
        for m in meshes:
            if isinstance(m, Mesh):
                if len(m.faces) == 0:  # e.g. the path of a camera that never moves
                    continue
                m = self.mesh(m)
            scene.add(m)
        if camera.intrins is not None:
            fx, fy, cx, cy = (float(v) for v in camera.intrins)
            cam = pr.IntrinsicsCamera(fx, fy, cx, cy, znear=0.05, zfar=1000.0)
        else:
            cam = pr.PerspectiveCamera(yfov=camera.yfov, aspectRatio=self.width / self.height)
        scene.add(cam, pose=camera.pose)
        for pose, intensity in list(lights) or [(camera.pose, 2.5)]:
            scene.add(pr.DirectionalLight(color=np.ones(3), intensity=intensity), pose=pose)
        flags = pr.RenderFlags.NONE if cull_faces else pr.RenderFlags.SKIP_CULL_FACES
        # No shadow flags: pyrender 0.1.45's shadow code calls np.infty, gone in numpy 2.
        color, depth = self._gl.render(scene, flags=flags)
        return np.ascontiguousarray(color[..., :3]), depth

    def gl_info(self) -> dict[str, str]:
        """The OpenGL implementation drawing (e.g. ``llvmpipe``, Mesa's CPU rasterizer)."""
        from OpenGL import GL

        self._gl._platform.make_current()
        return {
            "platform": os.environ.get("PYOPENGL_PLATFORM", ""),
            "renderer": GL.glGetString(GL.GL_RENDERER).decode(),
            "version": GL.glGetString(GL.GL_VERSION).decode(),
        }

    def close(self) -> None:
        if self._gl is not None:
            self._gl.delete()
            self._gl = None

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
