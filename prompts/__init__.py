"""The Jinja2 templates (*.j2) of every prompt and of the offline agents' text.

A package only so that a regular (non-editable) install ships the templates with the code.
"""
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent
